import type { ErrorLog } from "../log/error-log.ts";
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

/** What changed in the cache, for an engine that builds config objects of its own. */
export type ConfigChange =
  | { kind: "put"; item: ConfigItem }
  | { kind: "delete"; key: string }
  | { kind: "reload"; items: ConfigItem[] };

const RESOURCE_TYPES = new Set(["routes", "services", "upstreams", "stream_routes"]);

/**
 * The gateway's view of `<prefix>/routes/`, fed by a store watch like APISIX's config_etcd: each
 * put builds a brand-new object from the stored JSON (runtime fields on the old one are gone), a
 * broken watch triggers a full reload that rebuilds every object.
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
  private resyncing: Promise<void> | undefined;
  private readonly listeners: ((change: ConfigChange) => void)[] = [];
  /** Why the last reload attempt failed (cleared by a successful one). */
  private lastReloadError: string | undefined;
  /** How many full reloads happened (the first load counts). */
  reloads = 0;

  constructor(
    private readonly store: Store,
    readonly prefix: string,
    private readonly log: ErrorLog,
  ) {}

  get routesPrefix(): string {
    return `${this.prefix}/routes/`;
  }

  get appliedRevision(): number {
    return this.applied;
  }

  async start(): Promise<void> {
    await this.reload();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const w = this.watch;
    this.watch = undefined;
    await w?.cancel();
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  /** Resolve once the cache has applied every change up to `rev`. */
  waitForRevision(rev: number, timeoutMs = 5000): Promise<void> {
    if (this.applied >= rev || this.stopped) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`config cache did not apply revision ${rev} within ${timeoutMs} ms (applied: ${this.applied})`));
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
    try {
      return { key: kv.key, value: JSON.parse(kv.value) as RouteValue, modifiedIndex: kv.modRevision, createdIndex: kv.createRevision, raw: kv.value };
    } catch {
      this.log.write("error", { file: "core/config_etcd.lua", line: 460, fn: "load_full_data" }, `failed to decode ${kv.key}: invalid JSON`, "init_worker_by_lua*");
      return undefined;
    }
  }

  private async reload(): Promise<void> {
    const { kvs, revision } = await this.store.range(this.routesPrefix);
    this.items.clear();
    this.sorted = undefined;
    for (const kv of kvs) {
      const item = this.toItem(kv);
      if (item) this.items.set(kv.key, item);
    }
    this.reloads += 1;
    this.emit({ kind: "reload", items: [...this.items.values()] });
    this.setApplied(revision);
    if (this.stopped) return;
    this.watch = await this.store.watch(this.routesPrefix, revision + 1, {
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
          this.items.set(ev.kv.key, item);
          this.emit({ kind: "put", item });
        }
        top = Math.max(top, ev.kv.modRevision);
      } else {
        this.items.delete(ev.key);
        this.emit({ kind: "delete", key: ev.key });
        top = Math.max(top, ev.modRevision);
      }
    }
    this.setApplied(top);
  }

  private onBroken(reason: string): void {
    if (this.stopped || this.resyncing) return;
    this.watch = undefined;
    this.log.write("warn", { file: "core/config_etcd.lua", line: 690, fn: "sync_data" }, `watch of ${this.routesPrefix} broken (${reason}), reloading all`, "ngx.timer");
    this.resyncing = this.reloadUntilDone().finally(() => {
      this.resyncing = undefined;
    });
  }

  /** Like config_etcd's sync loop: keep trying a full reload (the store may still be coming back). */
  private async reloadUntilDone(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.reload();
        this.lastReloadError = undefined;
        return;
      } catch (e) {
        this.lastReloadError = (e as Error).message;
        this.log.write("error", { file: "core/config_etcd.lua", line: 700, fn: "sync_data" }, `failed to reload ${this.routesPrefix}: ${(e as Error).message}`, "ngx.timer");
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      }
    }
  }

  /**
   * Resolve once more than `after` full reloads have completed (after an etcd restart). Gives up
   * after timeoutMs even while a reload keeps retrying (a store that stopped answering), saying why.
   */
  async waitForReload(after: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.reloads <= after || this.resyncing) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`config cache did not reload within ${timeoutMs} ms${this.lastReloadError ? `: ${this.lastReloadError}` : ""}`);
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
