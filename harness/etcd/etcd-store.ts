/**
 * Store on a real etcd through the `etcd3` client. etcd3 is built for long-lived services: it
 * retries, opens circuit breakers and silently re-creates broken watches. The harness wants the
 * opposite (the gateway under test must see a broken watch and resync itself, and nothing may
 * hang), so this class turns all of that off: no retries, short deadlines, and a watch that
 * loses its stream is cancelled and reported through onBroken instead of being resumed.
 */

import { Etcd3, type IKeyValue, type IOptions, type IWatchResponse, type Watcher } from "etcd3";
import { StoreError, type KeyValue, type Store, type Watch, type WatchBatch, type WatchEvent, type WatchHandlers } from "../gateway/config/store.ts";

export interface EtcdStoreOptions {
  /** Deadline of every unary call (get, put, range, ...). */
  callTimeoutMs?: number;
  /** How long watch() waits for etcd to confirm the watch. */
  watchConnectTimeoutMs?: number;
}

type FaultPolicy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;

/**
 * A cockatiel-compatible policy that runs the call once. etcd3 only calls `execute` on its
 * policies; building this here avoids importing cockatiel, which is not a direct dependency.
 * It replaces etcd3's defaults (3 retries, and a per-host circuit breaker that keeps failing
 * calls for 5 s after an etcd restart, long after etcd is back).
 */
const runOnce = {
  execute: <T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) =>
    Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal })),
} as unknown as FaultPolicy;

function toKeyValue(kv: IKeyValue): KeyValue {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
  };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Reject after ms, so nothing waits on etcd forever. The timer is cleared either way. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

type WatchState = "pending" | "open" | "closed";

class EtcdWatch implements Watch {
  state: WatchState = "pending";
  /** Next revision this watch has not delivered yet (to tell compaction from other cancels). */
  nextRevision: number;

  constructor(
    private readonly store: EtcdStore,
    readonly watcher: Watcher,
    private readonly handlers: WatchHandlers,
    fromRevision: number,
  ) {
    this.nextRevision = fromRevision;
  }

  onData(res: IWatchResponse): void {
    if (this.state !== "open") return;
    // Progress notifications carry no events; they are not writes.
    if (res.events.length === 0) return;
    const events: WatchEvent[] = res.events.map((ev) =>
      ev.type === "Delete"
        ? { type: "delete", key: ev.kv.key.toString(), modRevision: Number(ev.kv.mod_revision) }
        : { type: "put", kv: toKeyValue(ev.kv) },
    );
    const last = res.events[res.events.length - 1]!;
    this.nextRevision = Number(last.kv.mod_revision) + 1;
    const batch: WatchBatch = { events, revision: Number(res.header.revision) };
    this.handlers.onBatch(batch);
  }

  /** Set by watch() while it waits for etcd to confirm: fails that wait. */
  abortPending: ((why: string) => void) | undefined;

  /** Mark closed and detach from etcd3's watch manager so it never resubscribes. */
  detach(): Promise<void> {
    if (this.state === "pending") this.abortPending?.("the store was closed or restarted while the watch was being created");
    this.state = "closed";
    this.store.forget(this);
    return withTimeout(this.watcher.cancel(), 1000, "etcd watch cancel").catch(() => undefined);
  }

  /** Report a broken watch once, outside etcd3's event dispatch (the consumer re-watches from it). */
  breakLater(reason: string): void {
    if (this.state === "closed") return;
    void this.detach();
    queueMicrotask(() => this.handlers.onBroken(reason));
  }

  /** Report a broken watch now (restart(): the consumer must have seen it when restart resolves). */
  breakNow(reason: string): Promise<void> {
    if (this.state === "closed") return Promise.resolve();
    const detached = this.detach();
    this.handlers.onBroken(reason);
    return detached;
  }

  async cancel(): Promise<void> {
    if (this.state === "closed") return;
    await this.detach();
  }
}

export class EtcdStore implements Store {
  readonly kind = "etcd" as const;
  private client: Etcd3;
  private readonly watches = new Set<EtcdWatch>();
  private closed = false;
  private readonly callTimeoutMs: number;
  private readonly watchConnectTimeoutMs: number;

  constructor(
    readonly endpoints: string[],
    readonly description: string,
    opts: EtcdStoreOptions = {},
  ) {
    if (endpoints.length === 0) throw new Error("EtcdStore needs at least one endpoint");
    this.callTimeoutMs = opts.callTimeoutMs ?? 2500;
    this.watchConnectTimeoutMs = opts.watchConnectTimeoutMs ?? 3000;
    this.client = this.connect();
  }

  private connect(): Etcd3 {
    return new Etcd3({
      hosts: this.endpoints,
      // Streams (watch) must live on; every unary call gets a deadline so a dead or
      // black-holed endpoint fails in seconds instead of hanging.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.callTimeoutMs }),
      faultHandling: { host: () => runOnce, global: runOnce },
      grpcOptions: {
        // grpc's default reconnect backoff grows to 120 s; keep reconnects prompt after an
        // etcd restart.
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1000,
        // Detect a silently dead peer on the watch stream. etcd's default keepalive
        // enforcement rejects pings more often than every 5 s.
        "grpc.keepalive_time_ms": 10_000,
        "grpc.keepalive_timeout_ms": 3000,
      },
    });
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
      const m = errorMessage(err);
      const silent = /UNAVAILABLE|DEADLINE_EXCEEDED|ECONNREFUSED|Deadline exceeded|No connection established/i.test(m);
      throw new StoreError(silent ? `${this.name} does not answer (${m})` : `${this.name}: ${m}`);
    }
  }

  /** etcd's server version and current revision (also a liveness check). */
  status(): Promise<{ version: string; revision: number }> {
    return this.call(async () => {
      const res = await this.client.maintenance.status();
      return { version: res.version, revision: Number(res.header.revision) };
    });
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.call(async () => {
      const res = await this.client.get(key).exec();
      const kv = res.kvs[0];
      return kv ? toKeyValue(kv) : undefined;
    });
  }

  range(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    return this.call(async () => {
      // etcd returns a range sorted by key (bytes) when no sort order is asked for.
      // The empty prefix means every key: etcd spells that as ["\0", "\0").
      const builder =
        prefix === "" ? this.client.getAll().inRange({ start: "\0", end: "\0" }) : this.client.getAll().prefix(prefix);
      const res = await builder.exec();
      return { kvs: res.kvs.map(toKeyValue), revision: Number(res.header.revision) };
    });
  }

  put(key: string, value: string): Promise<number> {
    return this.call(async () => Number((await this.client.put(key).value(value).exec()).header.revision));
  }

  delete(key: string): Promise<number | undefined> {
    return this.call(async () => {
      const res = await this.client.delete().key(key).exec();
      // A delete that matched nothing does not bump etcd's revision.
      return Number(res.deleted) > 0 ? Number(res.header.revision) : undefined;
    });
  }

  /** Delete every key under a (non-empty) prefix; resolves with how many were deleted. */
  deletePrefix(prefix: string): Promise<number> {
    if (prefix === "") throw new Error("deletePrefix needs a prefix");
    return this.call(async () => Number((await this.client.delete().prefix(prefix).exec()).deleted));
  }

  async watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> {
    this.assertOpen();
    const builder =
      prefix === "" ? this.client.watch().inRange({ start: "\0", end: "\0" }) : this.client.watch().prefix(prefix);
    // etcd: start_revision 0 means "from now on", same as MemoryStore.
    if (fromRevision > 0) builder.startRevision(String(fromRevision));
    // watcher() (not create()) attaches synchronously, so every listener below is in place
    // before the first response; an 'error' with no listener would throw inside etcd3.
    const watcher = builder.watcher();
    const w = new EtcdWatch(this, watcher, handlers, fromRevision > 0 ? fromRevision : 0);
    this.watches.add(w);

    let settle: ((err?: Error) => void) | undefined;
    const confirmed = new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
    w.abortPending = (why) => settle?.(new Error(`etcd watch on ${prefix}: ${why}`));

    watcher.on("connected", () => {
      if (w.state !== "pending") return;
      w.state = "open";
      settle?.();
    });
    watcher.on("data", (res) => w.onData(res));
    // etcd3 emits 'disconnected' when the shared watch stream fails (etcd died, connection
    // reset) and would then resubscribe by itself after a backoff. The consumer must resync
    // instead, so the watch is cancelled (which stops the resubscribe) and reported broken.
    watcher.on("disconnected", (err: Error) => {
      if (w.state === "pending") {
        settle?.(new Error(`etcd watch on ${prefix} failed to connect: ${errorMessage(err)}`));
        void w.detach();
        return;
      }
      w.breakLater(`connection lost: ${errorMessage(err)}`);
    });
    // 'error' = etcd cancelled the watch. The usual cause is compaction, and etcd 3.4 sends no
    // cancel_reason for it, so ask etcd whether our next revision is still readable.
    watcher.on("error", (err: Error) => {
      if (w.state === "pending") {
        // A watch from a revision etcd has compacted is refused at once: that is no failure of
        // the call but the news the consumer needs (read everything again), as MemoryStore says it.
        void this.cancelReason(w.nextRevision, err).then((reason) => {
          if (w.state !== "pending") return;
          if (reason === "compacted") {
            w.state = "open";
            settle?.();
            w.breakLater("compacted");
            return;
          }
          settle?.(new Error(`etcd refused watch on ${prefix}: ${errorMessage(err)}`));
          void w.detach();
        });
        return;
      }
      if (w.state === "closed") return;
      w.state = "closed";
      this.forget(w);
      void this.cancelReason(w.nextRevision, err).then((reason) => handlers.onBroken(reason));
    });

    try {
      await withTimeout(confirmed, this.watchConnectTimeoutMs, `etcd watch on ${prefix}`);
    } catch (err) {
      await w.detach();
      throw new StoreError(`${this.name}: ${errorMessage(err)}`);
    }
    return w;
  }

  private async cancelReason(nextRevision: number, err: Error): Promise<string> {
    if (nextRevision > 0 && (await this.isCompacted(nextRevision).catch(() => false))) return "compacted";
    return `watch cancelled by etcd: ${errorMessage(err) || "no reason given"}`;
  }

  /** A read at a compacted revision is refused with "required revision has been compacted". */
  isCompacted(revision: number): Promise<boolean> {
    return this.call(async () => {
      try {
        await this.client.kv.range({ key: Buffer.from("\0"), revision: String(revision), count_only: true });
        return false;
      } catch (e) {
        if (/compacted/.test(errorMessage(e))) return true;
        if (/future revision/.test(errorMessage(e))) return false;
        throw e;
      }
    });
  }

  async compact(revision: number): Promise<void> {
    // physical: wait until etcd has really dropped the history, so a watch started right after
    // this resolves reliably sees the compaction.
    await this.call(() => this.client.kv.compact({ revision: String(revision), physical: true }));
  }

  revision(): Promise<number> {
    return this.call(async () => Number((await this.client.kv.range({ key: Buffer.from("\0"), count_only: true })).header.revision));
  }

  async restart(): Promise<void> {
    this.assertOpen();
    const open = [...this.watches];
    this.watches.clear();
    // A fresh client first (new channels, new watch stream, as after a real etcd restart), so a
    // consumer that re-watches from inside onBroken lands on it, not on the client going away.
    const old = this.client;
    this.client = this.connect();
    await Promise.all(open.map((w) => w.breakNow("restart")));
    old.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const open = [...this.watches];
    this.watches.clear();
    // Detach first: closing the client under attached watchers makes etcd3 retry the watch
    // stream forever on a closed client.
    await Promise.all(open.map((w) => w.detach()));
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
