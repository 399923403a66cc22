import type { ErrorLog } from "../log/error-log.ts";
import { isKnownWellFormed } from "./known-json.ts";
import type { KeyValue, Store, Watch, WatchBatch } from "./store.ts";

export interface RouteValue {
  id?: string | number;
  uri?: string;
  uris?: string[];
  methods?: string[];
  plugins?: Record<string, unknown>;
  upstream?: unknown;
  [key: string]: unknown;
}

/** One config item as APISIX keeps it in memory: a fresh object for every change of the key. */
export interface ConfigItem {
  key: string;
  value: RouteValue;
  modifiedIndex: number;
  createdIndex: number;
  /** The stored JSON text the value was built from. */
  raw: string;
}

/**
 * An item from a text known to be valid JSON: its value is decoded when first read, and is then
 * the same object on every read (runtime fields written on it stay until the item is replaced).
 */
class StoredItem implements ConfigItem {
  #value: RouteValue | undefined;

  constructor(
    readonly key: string,
    readonly raw: string,
    readonly modifiedIndex: number,
    readonly createdIndex: number,
  ) {}

  get value(): RouteValue {
    return (this.#value ??= JSON.parse(this.raw) as RouteValue);
  }
}

/**
 * What APISIX's core/config_etcd.lua does at a version where it can be told from outside: the
 * line of each log call the harness reproduces, and whether a full reload keeps the objects whose
 * modifiedIndex did not change (3.18.0's load_full_data, config_etcd.lua@3.18.0:611-626).
 */
export interface ConfigEtcdBehaviour {
  reloadKeepsUnchanged: boolean;
  lines: {
    /** log.warn("watch canceled by etcd, res: ", ...) in do_run_watch */
    canceled: number;
    /** log.error("etcd compacted, compact_revision=", ...) */
    compacted: number;
    /** log.error("received smaller revision, ...") */
    smallerRevision: number;
    /** log.error("waitdir [", key, "] err: ", err, ", will read the configuration again via readdir") in sync_data */
    readdir: number;
    /** log.error("watchdir err: ", err) */
    watchdirErr: number;
  };
}

/** config_etcd.lua@3.15.0 (3.16.0 has the same lines). */
export const CONFIG_ETCD_3_15: ConfigEtcdBehaviour = { reloadKeepsUnchanged: false, lines: { canceled: 251, compacted: 254, smallerRevision: 295, readdir: 705, watchdirErr: 204 } };

/** What changed in the cache, for an engine that builds config objects of its own. */
export type ConfigChange =
  | { kind: "put"; item: ConfigItem }
  | { kind: "delete"; key: string }
  /** `kept`: keys whose objects survived the reload (3.18.0 keeps those whose modifiedIndex is unchanged). */
  | { kind: "reload"; items: ConfigItem[]; kept: string[] };

const RESOURCE_TYPES = new Set(["routes", "services", "upstreams", "stream_routes"]);
const FILE = "config_etcd.lua";

export interface ConfigCacheOptions {
  store: Store;
  /** Where this gateway's keys live in the store (a run's own namespace on a shared etcd). */
  storePrefix: string;
  /** The prefix APISIX is configured with (etcd.prefix), as every key it shows carries it. */
  prefix: string;
  log: ErrorLog;
  behaviour: ConfigEtcdBehaviour;
}

/**
 * The gateway's view of `<prefix>/routes/`, fed by a store watch as APISIX's core/config_etcd.lua
 * is: each change builds a brand-new object from the stored JSON (runtime fields on the old one
 * are gone). A broken watch resumes from the next revision and reloads nothing; only a watch
 * that fell behind a compaction, or a revision that went backwards, makes it read everything again
 * (config_etcd.lua@3.15.0:243-300 and sync_data :665-705).
 */
export class ConfigCache {
  private readonly items = new Map<string, ConfigItem>();
  /** routes() in key order, until the next change. */
  private sorted: ConfigItem[] | undefined;
  /** fetchLatestConf's reading of each resource path it was asked: the item key, or none. */
  private readonly resourceKeys = new Map<string, string | null>();
  private watch: Watch | undefined;
  private applied = 0;
  private waiters: { rev: number; resolve: () => void }[] = [];
  private stopped = false;
  /** The gateway's connection to etcd is cut (etcd: disconnect) until reconnect(). */
  private cut = false;
  private resyncing: Promise<void> | undefined;
  /** A break reported while a resync was under way. */
  private brokenAgain: string | undefined;
  private readonly listeners: ((change: ConfigChange) => void)[] = [];
  /** Why the last resync attempt failed (cleared by a successful one). */
  private lastResyncError: string | undefined;
  /** How many full reloads happened (the first load counts). */
  reloads = 0;
  /** How many times the watch was re-established without a reload. */
  resumes = 0;
  /** The revision etcd was last compacted at, when the harness did it (etcd 3.4's cancel does not say). */
  compactedAt: number | undefined;

  constructor(private readonly opts: ConfigCacheOptions) {}

  get prefix(): string {
    return this.opts.prefix;
  }

  private get store(): Store {
    return this.opts.store;
  }

  private get log(): ErrorLog {
    return this.opts.log;
  }

  get routesPrefix(): string {
    return `${this.opts.prefix}/routes/`;
  }

  private get storeRoutes(): string {
    return `${this.opts.storePrefix}/routes/`;
  }

  /** A store key as APISIX names it (its configured prefix instead of the run's namespace). */
  private viewKey(storeKey: string): string {
    return this.opts.prefix + storeKey.slice(this.opts.storePrefix.length);
  }

  get appliedRevision(): number {
    return this.applied;
  }

  async start(): Promise<void> {
    await this.reload();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.dropWatch();
  }

  /** Cancel the watch and release whoever waits for a revision: no event will come to apply it. */
  private async dropWatch(): Promise<void> {
    const w = this.watch;
    this.watch = undefined;
    await w?.cancel();
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  /** Resolve once the cache has applied every change up to `rev`. */
  waitForRevision(rev: number, timeoutMs = 5000): Promise<void> {
    if (this.applied >= rev || this.stopped || this.cut) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        // Say why when the watch is down: the store's own error names it (a dead etcd, say).
        const why = this.watch ? "" : this.lastResyncError ? `: the watch is broken and cannot resume: ${this.lastResyncError}` : "";
        reject(new Error(`config cache did not apply revision ${rev} within ${timeoutMs} ms (applied: ${this.applied})${why}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ rev, resolve: done });
    });
  }

  /** Hear about every change, in the order the cache applies them. */
  subscribe(listener: (change: ConfigChange) => void): void {
    this.listeners.push(listener);
  }

  private emit(change: ConfigChange): void {
    for (const l of this.listeners) l(change);
  }

  /** Every route, in key order (the same array until the next change: do not modify it). */
  routes(): readonly ConfigItem[] {
    this.sorted ??= [...this.items.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
    return this.sorted;
  }

  getRoute(id: string): ConfigItem | undefined {
    return this.items.get(`${this.routesPrefix}${id}`);
  }

  /**
   * fetch_latest_conf: strip a `#json.path` suffix and the prefix, accept only the four resource
   * types, return the current object (or nothing when it is gone).
   */
  fetchLatestConf(resourcePath: string): ConfigItem | undefined {
    let key = this.resourceKeys.get(resourcePath);
    if (key === undefined) {
      key = this.resourceKey(resourcePath);
      // The timers ask for the same few paths every second; a route's paths are few.
      if (this.resourceKeys.size >= 4096) this.resourceKeys.clear();
      this.resourceKeys.set(resourcePath, key);
    }
    return key === null ? undefined : this.items.get(key);
  }

  private resourceKey(resourcePath: string): string | null {
    let path = resourcePath.split("#")[0]!;
    if (path.startsWith(this.prefix + "/")) path = path.slice(this.prefix.length);
    const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
    if (!m || !RESOURCE_TYPES.has(m[1]!)) return null;
    if (m[1] !== "routes") return null;
    return `${this.routesPrefix}${m[2]}`;
  }

  private toItem(kv: KeyValue): ConfigItem | undefined {
    const key = this.viewKey(kv.key);
    if (isKnownWellFormed(kv.key, kv.value)) return new StoredItem(key, kv.value, kv.modRevision, kv.createRevision);
    try {
      return { key, value: JSON.parse(kv.value) as RouteValue, modifiedIndex: kv.modRevision, createdIndex: kv.createRevision, raw: kv.value };
    } catch {
      this.log.write("error", { file: FILE, line: 540, fn: "load_full_data" }, `failed to decode ${key}: invalid JSON`, "ngx.timer");
      return undefined;
    }
  }

  /** load_full_data: every object new, or (3.18.0) kept where its modifiedIndex did not change. */
  private async reload(): Promise<void> {
    const { kvs, revision } = await this.store.range(this.storeRoutes);
    const previous = new Map(this.items);
    const kept: string[] = [];
    this.items.clear();
    this.sorted = undefined;
    for (const kv of kvs) {
      const old = previous.get(this.viewKey(kv.key));
      const keep = this.opts.behaviour.reloadKeepsUnchanged && old?.modifiedIndex === kv.modRevision;
      const item = keep ? old : this.toItem(kv);
      if (keep) kept.push(old.key);
      if (item) this.items.set(item.key, item);
    }
    this.reloads += 1;
    this.emit({ kind: "reload", items: [...this.items.values()], kept });
    this.setApplied(revision);
    await this.watchFrom(revision + 1);
  }

  private async watchFrom(revision: number): Promise<void> {
    if (this.stopped || this.cut) return;
    this.watch = await this.store.watch(this.storeRoutes, revision, {
      onBatch: (batch) => this.apply(batch),
      onBroken: (reason) => this.onBroken(reason),
    });
  }

  private apply(batch: WatchBatch): void {
    this.sorted = undefined;
    let top = this.applied;
    for (const ev of batch.events) {
      if (ev.type === "put") {
        const item = this.toItem(ev.kv);
        if (item) {
          this.items.set(item.key, item);
          this.emit({ kind: "put", item });
        }
        top = Math.max(top, ev.kv.modRevision);
      } else {
        const key = this.viewKey(ev.key);
        this.items.delete(key);
        this.emit({ kind: "delete", key });
        top = Math.max(top, ev.modRevision);
      }
    }
    this.setApplied(top);
  }

  private onBroken(reason: string): void {
    if (this.stopped) return;
    this.watch = undefined;
    // A watch re-created during a resync may break at once (compacted): handle it right after.
    if (this.resyncing) {
      this.brokenAgain = reason;
      return;
    }
    this.resyncing = this.resync(reason).finally(() => {
      this.resyncing = undefined;
      const again = this.brokenAgain;
      this.brokenAgain = undefined;
      if (again !== undefined) this.onBroken(again);
    });
  }

  /**
   * config_etcd's watch loop after a broken stream: watch again from the next revision (nothing
   * reloads); when etcd says that revision was compacted, or its revision went backwards, read
   * everything again. Retries while the store does not answer, as APISIX does every few seconds.
   */
  private async resync(reason: string): Promise<void> {
    const lines = this.opts.behaviour.lines;
    const ctx = "ngx.timer";
    for (let attempt = 0; !this.stopped && !this.cut; attempt++) {
      try {
        // etcd refuses a watch from a compacted revision; asking first makes that answer part of
        // the resync, rather than a cancel arriving some time after the watch seemed to take.
        if (reason === "compacted" || (await this.store.isCompacted(this.applied + 1))) {
          const at = this.compactedAt ?? "?";
          this.log.write("warn", { file: FILE, line: lines.canceled }, `watch canceled by etcd, res: {result = {canceled = true, compact_revision = "${at}"}}`, ctx);
          this.log.write("error", { file: FILE, line: lines.compacted }, `etcd compacted, compact_revision=${at}`, ctx);
          this.log.write("error", { file: FILE, line: lines.readdir, fn: "sync_data" }, "waitdir [/routes] err: compacted, will read the configuration again via readdir", ctx);
          await this.reload();
        } else {
          const revision = await this.store.revision();
          if (revision < this.applied) {
            this.log.write("error", { file: FILE, line: lines.smallerRevision }, `received smaller revision, rev=${revision}, watch_ctx.rev=${this.applied + 1}. etcd may be restarted. resyncing....`, ctx);
            this.log.write("error", { file: FILE, line: lines.readdir, fn: "sync_data" }, "waitdir [/routes] err: restarted, will read the configuration again via readdir", ctx);
            await this.reload();
          } else {
            await this.watchFrom(this.applied + 1);
            this.resumes += 1;
          }
        }
        this.lastResyncError = undefined;
        return;
      } catch (e) {
        this.lastResyncError = (e as Error).message;
        if (attempt === 0) this.log.write("error", { file: FILE, line: lines.watchdirErr }, `watchdir err: ${(e as Error).message}`, ctx);
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      }
    }
  }

  /** The gateway loses its connection to etcd (the Admin API keeps writing): no events arrive. */
  async disconnect(): Promise<void> {
    this.cut = true;
    await this.dropWatch();
  }

  /** The connection comes back: the watch resumes from where it stopped (or learns it was compacted). */
  async reconnect(): Promise<void> {
    this.cut = false;
    await this.settle(() => this.onBroken("reconnect"));
  }

  /** After a restart or a reconnect: resolve once the watch is back (or everything was reloaded). */
  async settle(trigger: () => void = () => undefined, timeoutMs = 5000): Promise<void> {
    trigger();
    const deadline = Date.now() + timeoutMs;
    // A broken watch is reported asynchronously (the stores report it in a microtask, or on the I/O
    // that broke it): one turn of the event loop lets it arrive. setImmediate, not setTimeout(0),
    // which costs a whole millisecond, the largest share of a lifecycle sequence's time.
    await new Promise((r) => setImmediate(r));
    while (this.resyncing || (!this.watch && !this.stopped && !this.cut)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the gateway's etcd watch did not come back within ${timeoutMs} ms${this.lastResyncError ? `: ${this.lastResyncError}` : ""}`);
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<void>((r) => (timer = setTimeout(r, this.resyncing ? left : 5)));
      await Promise.race([this.resyncing ?? tick, tick]);
      clearTimeout(timer);
    }
  }

  private setApplied(rev: number): void {
    this.applied = Math.max(this.applied, rev);
    const ready = this.waiters.filter((w) => w.rev <= this.applied);
    this.waiters = this.waiters.filter((w) => w.rev > this.applied);
    for (const w of ready) w.resolve();
  }
}
