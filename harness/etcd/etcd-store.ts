/**
 * Store on a real etcd through its v3 JSON gateway (gateway-client.ts), the API APISIX uses. The
 * gateway under test must see a broken watch and resync itself, and nothing may hang: so no call
 * is retried, every call has a deadline, and a watch that loses its stream is reported through
 * onBroken, never resumed behind the consumer's back.
 */

import { StoreError, type KeyValue, type Store, type Watch, type WatchEvent, type WatchHandlers } from "../gateway/config/store.ts";
import { fromBase64, GatewayClient, GatewayError, prefixRange, toBase64, type RawKeyValue, type WatchResponse, type WatchStream } from "./gateway-client.ts";

export interface EtcdStoreOptions {
  /** Deadline of every unary call (get, put, range, ...). */
  callTimeoutMs?: number;
  /** How long watch() waits for etcd to confirm the watch. */
  watchConnectTimeoutMs?: number;
}

function toKeyValue(kv: RawKeyValue): KeyValue {
  return {
    key: fromBase64(kv.key),
    value: fromBase64(kv.value),
    createRevision: Number(kv.create_revision ?? 0),
    modRevision: Number(kv.mod_revision ?? 0),
  };
}

function toEvent(ev: NonNullable<WatchResponse["events"]>[number]): WatchEvent {
  const kv = ev.kv ?? {};
  return ev.type === "DELETE" ? { type: "delete", key: fromBase64(kv.key), modRevision: Number(kv.mod_revision ?? 0) } : { type: "put", kv: toKeyValue(kv) };
}

const revisionOf = (res: { header?: { revision?: string } }): number => Number(res.header?.revision ?? 0);

/** The one key etcd never holds for us: reads of it only ask for a revision. */
const NUL = toBase64("\0");

type WatchState = "pending" | "open" | "closed";

class EtcdWatch implements Watch {
  state: WatchState = "pending";
  stream: WatchStream | undefined;
  /** Settles watch(): resolved once etcd confirms the watch, rejected when it cannot. */
  private settle: ((err?: string) => void) | undefined;
  readonly confirmed: Promise<void>;

  constructor(
    private readonly store: EtcdStore,
    private readonly prefix: string,
    private readonly handlers: WatchHandlers,
  ) {
    this.confirmed = new Promise<void>((resolve, reject) => {
      this.settle = (err) => (err ? reject(new Error(err)) : resolve());
    });
  }

  onResponse(res: WatchResponse): void {
    if (this.state === "closed") return;
    if (res.canceled) {
      // etcd accepts a watch from a compacted revision and cancels it at once, saying up to where
      // it compacted: no failure of the call, but the news the consumer needs (read everything again).
      const compacted = Number(res.compact_revision ?? 0) > 0;
      const reason = res.cancel_reason || "no reason given";
      if (this.state === "pending" && !compacted) return this.fail(`etcd refused watch on ${this.prefix}: ${reason}`);
      this.confirm();
      this.breakLater(compacted ? "compacted" : `watch cancelled by etcd: ${reason}`);
      return;
    }
    if (res.created) this.confirm();
    // Progress notifications carry no events; they are not writes.
    if (this.state !== "open" || !res.events?.length) return;
    this.handlers.onBatch({ events: res.events.map(toEvent), revision: revisionOf(res) });
  }

  onEnd(why: string, refused: boolean): void {
    if (this.state === "closed") return;
    if (this.state === "pending") return this.fail(`etcd ${refused ? "refused" : "failed to open"} watch on ${this.prefix}: ${why}`);
    this.breakLater(`connection lost: ${why}`);
  }

  private confirm(): void {
    if (this.state !== "pending") return;
    this.state = "open";
    this.settle?.();
  }

  /** watch() rejects with this; the stream is closed. */
  fail(why: string): void {
    this.settle?.(why);
    this.detach();
  }

  /** Close the stream and forget the watch; a watch() still waiting for it rejects. */
  detach(): void {
    if (this.state === "pending") this.settle?.(`etcd watch on ${this.prefix}: the store was closed or restarted while the watch was being created`);
    this.state = "closed";
    this.store.forget(this);
    this.stream?.cancel();
  }

  /** Report a broken watch once, outside the stream's event dispatch (the consumer re-watches from it). */
  breakLater(reason: string): void {
    if (this.state === "closed") return;
    this.detach();
    queueMicrotask(() => this.handlers.onBroken(reason));
  }

  /** Report a broken watch now (restart(): the consumer must have seen it when restart resolves). */
  breakNow(reason: string): void {
    if (this.state === "closed") return;
    this.detach();
    this.handlers.onBroken(reason);
  }

  async cancel(): Promise<void> {
    if (this.state !== "closed") this.detach();
  }
}

export class EtcdStore implements Store {
  readonly kind = "etcd" as const;
  private readonly client: GatewayClient;
  private readonly watches = new Set<EtcdWatch>();
  private closed = false;
  private readonly watchConnectTimeoutMs: number;

  constructor(
    readonly endpoints: string[],
    readonly description: string,
    opts: EtcdStoreOptions = {},
  ) {
    if (endpoints.length === 0) throw new Error("EtcdStore needs at least one endpoint");
    this.watchConnectTimeoutMs = opts.watchConnectTimeoutMs ?? 3000;
    this.client = new GatewayClient(endpoints, opts.callTimeoutMs ?? 2500);
  }

  /** "etcd at 127.0.0.1:2379": how errors name this store. */
  get name(): string {
    return `etcd at ${this.endpoints.map((e) => e.replace(/^[a-z]+:\/\//i, "")).join(",")}`;
  }

  /** Run a client call; whatever it throws becomes a StoreError naming this etcd. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await fn();
    } catch (err) {
      if (err instanceof GatewayError && err.kind === "closed") throw new StoreError(`${this.description}: store is closed`);
      const m = err instanceof Error ? err.message : String(err);
      const silent = err instanceof GatewayError && err.kind === "unreachable";
      throw new StoreError(silent ? `${this.name} does not answer (${m})` : `${this.name}: ${m}`);
    }
  }

  /** etcd's server version and current revision (also a liveness check). */
  status(): Promise<{ version: string; revision: number }> {
    return this.call(async () => {
      const res = await this.client.status();
      return { version: res.version ?? "unknown", revision: revisionOf(res) };
    });
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.call(async () => {
      const kv = (await this.client.range({ key: toBase64(key) })).kvs?.[0];
      return kv ? toKeyValue(kv) : undefined;
    });
  }

  range(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    return this.call(async () => {
      // etcd returns a range sorted by key (bytes) when no sort order is asked for.
      const res = await this.client.range(prefixRange(prefix));
      return { kvs: (res.kvs ?? []).map(toKeyValue), revision: revisionOf(res) };
    });
  }

  put(key: string, value: string): Promise<number> {
    return this.call(async () => revisionOf(await this.client.put(key, value)));
  }

  delete(key: string): Promise<number | undefined> {
    return this.call(async () => {
      const res = await this.client.deleteRange({ key: toBase64(key) });
      // A delete that matched nothing does not bump etcd's revision.
      return Number(res.deleted ?? 0) > 0 ? revisionOf(res) : undefined;
    });
  }

  /** Delete every key under a (non-empty) prefix; resolves with how many were deleted. */
  deletePrefix(prefix: string): Promise<number> {
    if (prefix === "") throw new Error("deletePrefix needs a prefix");
    return this.call(async () => Number((await this.client.deleteRange(prefixRange(prefix))).deleted ?? 0));
  }

  async watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    this.assertOpen();
    const w = new EtcdWatch(this, prefix, handlers);
    this.watches.add(w);
    // etcd: start_revision 0 means "from now on", same as MemoryStore.
    const create = fromRevision > 0 ? { ...prefixRange(prefix), start_revision: String(fromRevision) } : prefixRange(prefix);
    w.stream = this.client.watch(create, { onResponse: (res) => w.onResponse(res), onEnd: (why, refused) => w.onEnd(why, refused) });

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`etcd watch on ${prefix} timed out after ${this.watchConnectTimeoutMs} ms`)), this.watchConnectTimeoutMs);
    });
    try {
      await Promise.race([w.confirmed, timeout]);
    } catch (err) {
      w.detach();
      throw new StoreError(`${this.name}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    return w;
  }

  /** A read at a compacted revision is refused with "required revision has been compacted". */
  isCompacted(revision: number): Promise<boolean> {
    return this.call(async () => {
      try {
        await this.client.range({ key: NUL, revision: String(revision), count_only: true });
        return false;
      } catch (e) {
        if (e instanceof GatewayError && e.kind === "refused") {
          if (/compacted/.test(e.message)) return true;
          if (/future revision/.test(e.message)) return false;
        }
        throw e;
      }
    });
  }

  async compact(revision: number): Promise<void> {
    // physical: wait until etcd has really dropped the history, so a watch started right after
    // this resolves reliably sees the compaction.
    await this.call(() => this.client.compact(revision, true));
  }

  revision(): Promise<number> {
    return this.call(async () => revisionOf(await this.client.range({ key: NUL, count_only: true })));
  }

  async restart(): Promise<void> {
    this.assertOpen();
    const open = [...this.watches];
    this.watches.clear();
    // Each watch's stream is closed before the consumer hears of it, so a consumer that
    // re-watches from inside onBroken opens a new stream, as after a real etcd restart.
    for (const w of open) w.breakNow("restart");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.detach();
    this.watches.clear();
    this.client.close();
  }

  /** @internal */
  forget(w: EtcdWatch): void {
    this.watches.delete(w);
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError(`${this.description}: store is closed`);
  }
}
