/**
 * In-memory Store with etcd's observable semantics: one global revision (1 when empty), one
 * revision per write, create/mod revisions, a history log that watches replay from, compaction
 * and "restart" that break watches. Built for speed: the property tests push ~1000 sequences a
 * second through it, so there are no timers, only microtasks.
 */

import { StoreError, type KeyValue, type Store, type Watch, type WatchBatch, type WatchEvent, type WatchHandlers } from "./store.ts";

/** One history entry: exactly one write, so history revisions are contiguous. */
interface HistoryEntry {
  key: string;
  batch: WatchBatch;
}

/**
 * etcd orders keys by their UTF-8 bytes. JS `<` compares UTF-16 code units, which agrees with
 * UTF-8 byte order except when a surrogate (D800-DFFF) meets a code unit in E000-FFFF; fix that.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let ca = a.charCodeAt(i);
    let cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca >= 0xd800 && cb >= 0xd800) {
      ca = ca >= 0xe000 ? ca - 0x800 : ca + 0x2000;
      cb = cb >= 0xe000 ? cb - 0x800 : cb + 0x2000;
    }
    return ca < cb ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

class MemoryWatch implements Watch {
  closed = false;
  private queue: WatchBatch[] = [];
  private head = 0;
  private scheduled = false;

  constructor(
    readonly prefix: string,
    private readonly handlers: WatchHandlers,
    private readonly onCancel: (w: MemoryWatch) => void,
  ) {}

  push(batch: WatchBatch): void {
    this.queue.push(batch);
    if (!this.scheduled) {
      this.scheduled = true;
      // Never deliver inside put(): etcd events always arrive after the write's call returns.
      queueMicrotask(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    try {
      while (!this.closed && this.head < this.queue.length) {
        const batch = this.queue[this.head++]!;
        this.handlers.onBatch(batch);
      }
    } finally {
      if (this.head >= this.queue.length) {
        this.queue = [];
        this.head = 0;
      } else if (!this.closed && !this.scheduled) {
        // A handler threw: keep delivering the rest in order instead of stalling the watch.
        this.scheduled = true;
        queueMicrotask(this.flush);
      }
    }
  };

  /** Close and tell the consumer why (restart, compaction). */
  break(reason: string): void {
    if (this.closed) return;
    this.close();
    this.handlers.onBroken(reason);
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.head = 0;
    this.onCancel(this);
  }

  async cancel(): Promise<void> {
    if (!this.closed) this.close();
  }
}

export class MemoryStore implements Store {
  readonly kind = "memory" as const;
  readonly description: string;

  private rev = 1;
  /** Revisions below this were compacted (etcd's compactMainRev). 0 = never compacted. */
  private compactRev = 0;
  private readonly data = new Map<string, KeyValue>();
  /** history[i] is the write at revision historyBase + i. */
  private history: HistoryEntry[] = [];
  private historyBase = 2;
  private readonly watches = new Set<MemoryWatch>();
  private closed = false;

  constructor(description = "in-memory store") {
    this.description = description;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.assertOpen();
    return this.data.get(key);
  }

  async range(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    this.assertOpen();
    const kvs: KeyValue[] = [];
    for (const [key, kv] of this.data) {
      if (key.startsWith(prefix)) kvs.push(kv);
    }
    kvs.sort((a, b) => compareKeys(a.key, b.key));
    return { kvs, revision: this.rev };
  }

  async put(key: string, value: string): Promise<number> {
    this.assertOpen();
    const revision = ++this.rev;
    const prev = this.data.get(key);
    // Frozen so a consumer that mutates what it was handed fails loudly instead of
    // silently rewriting the store's state.
    const kv: KeyValue = Object.freeze({
      key,
      value,
      createRevision: prev ? prev.createRevision : revision,
      modRevision: revision,
    });
    this.data.set(key, kv);
    this.record(key, { type: "put", kv }, revision);
    return revision;
  }

  async delete(key: string): Promise<number | undefined> {
    this.assertOpen();
    // etcd does not bump the revision when a delete matches nothing.
    if (!this.data.has(key)) return undefined;
    this.data.delete(key);
    const revision = ++this.rev;
    this.record(key, { type: "delete", key, modRevision: revision }, revision);
    return revision;
  }

  async watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    this.assertOpen();
    const w = new MemoryWatch(prefix, handlers, (x) => this.watches.delete(x));
    // etcd: start_revision 0 (or less) means "from now on".
    const start = fromRevision > 0 ? fromRevision : this.rev + 1;
    if (start < this.compactRev) {
      // etcd accepts the watch (the create response arrives) and then cancels it with
      // compact_revision set; the consumer sees a broken watch, asynchronously.
      w.closed = true;
      queueMicrotask(() => handlers.onBroken("compacted"));
      return w;
    }
    this.watches.add(w);
    for (let i = Math.max(0, start - this.historyBase); i < this.history.length; i++) {
      const entry = this.history[i]!;
      if (entry.key.startsWith(prefix)) w.push(entry.batch);
    }
    return w;
  }

  async compact(revision: number): Promise<void> {
    this.assertOpen();
    // Same refusals as etcd's mvcc, so callers see the same errors on both stores.
    if (revision > this.rev) throw new StoreError("etcdserver: mvcc: required revision is a future revision");
    if (revision <= this.compactRev) throw new StoreError("etcdserver: mvcc: required revision has been compacted");
    this.compactRev = revision;
    const drop = revision - this.historyBase;
    if (drop > 0) {
      this.history = this.history.slice(drop);
      this.historyBase = revision;
    }
  }

  async isCompacted(revision: number): Promise<boolean> {
    this.assertOpen();
    return revision < this.compactRev;
  }

  async revision(): Promise<number> {
    this.assertOpen();
    return this.rev;
  }

  async restart(): Promise<void> {
    this.assertOpen();
    for (const w of [...this.watches]) w.break("restart");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.close();
  }

  private record(key: string, event: WatchEvent, revision: number): void {
    const batch: WatchBatch = Object.freeze({ events: Object.freeze([Object.freeze(event)]) as WatchEvent[], revision });
    this.history.push({ key, batch });
    for (const w of this.watches) {
      if (key.startsWith(w.prefix)) w.push(batch);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError(`${this.description}: store is closed`);
  }
}
