import { AdminApi } from "./admin/admin-api.ts";
import type { Clock } from "./clock/clock.ts";
import { compactNow } from "./config/compact-now.ts";
import { ConfigCache } from "./config/config-cache.ts";
import type { Store } from "./config/store.ts";
import type { CheckerView, Engine, GatewayVersion, Injection, PluginCall, PluginCallResult, PoolsView, WorkerState } from "./engine.ts";
import { jsonResponse, type GatewayRequest, type GatewayResponse } from "./http-types.ts";
import { ErrorLog, type LogLevel } from "./log/error-log.ts";
import type { Transport } from "./net/transport.ts";
import { INSTANCE_HEADER, PLUGIN_NAME } from "./plugins/ai-proxy-multi/plugin.ts";
import type { Resolver } from "./resolver/resolver.ts";
import { matchRoute } from "./router/router.ts";
import { Tracer, type TraceRecorder } from "./trace.ts";

export type { CheckerView, PoolsView, WorkerState } from "./engine.ts";

/**
 * What a scenario can do to etcd: `restart` (etcd restarts with its data: the gateway's watch
 * breaks and resumes from its revision), `compact` (history up to now is dropped), `disconnect`
 * and `reconnect` (the gateway alone loses and regains its connection while the Admin API keeps
 * writing; with a compaction in between, the resumed watch is told it fell behind).
 */
export type EtcdAction = "restart" | "compact" | "disconnect" | "reconnect";
export const ETCD_ACTIONS: readonly EtcdAction[] = ["restart", "compact", "disconnect", "reconnect"];

export interface GatewayOptions {
  version: GatewayVersion;
  store: Store;
  clock: Clock;
  transport: Transport;
  resolver: Resolver;
  /** APISIX's etcd.prefix: every key it shows carries it (default /apisix). */
  prefix?: string;
  /** Where the gateway's keys are in the store, when not under `prefix` (a run's own namespace on a shared etcd). */
  storePrefix?: string;
  adminKey?: string;
  logLevel?: LogLevel;
  logFile?: string;
  logSink?: (line: string) => void;
  seed?: number;
  workers?: number;
  /** Where the run's timeline goes (admin writes, requests, ticks, checkers, probes, log lines). */
  trace?: TraceRecorder;
}

/**
 * The gateway's world (store watch, config cache, Admin API, router, error log) around an engine
 * that runs the code under test for one version. It speaks the Admin API, the data plane and the
 * control API as handler calls; `serve` puts HTTP servers in front of them.
 */
export class Gateway {
  readonly log: ErrorLog;
  readonly config: ConfigCache;
  readonly engine: Engine;
  readonly admin: AdminApi;
  readonly prefix: string;
  /** Where the keys live in the store. */
  readonly storePrefix: string;
  /** Records the timeline when the options gave a recorder; the engine emits through it too. */
  readonly trace: Tracer;
  private nextWorker = 0;

  private constructor(readonly opts: GatewayOptions) {
    this.prefix = opts.prefix ?? "/apisix";
    this.storePrefix = opts.storePrefix ?? this.prefix;
    this.trace = new Tracer(opts.trace, () => opts.clock.now());
    const logLevel = opts.logLevel ?? "warn";
    const logOpts: ConstructorParameters<typeof ErrorLog>[0] = { clock: opts.clock, level: logLevel, trace: this.trace };
    if (opts.logFile) logOpts.file = opts.logFile;
    if (opts.logSink) logOpts.sink = opts.logSink;
    this.log = new ErrorLog(logOpts);
    this.config = new ConfigCache({ store: opts.store, storePrefix: this.storePrefix, prefix: this.prefix, log: this.log, behaviour: opts.version.configEtcd });
    this.engine = opts.version.createEngine({
      clock: opts.clock,
      log: this.log,
      transport: opts.transport,
      resolver: opts.resolver,
      config: this.config,
      prefix: this.prefix,
      logLevel,
      seed: opts.seed ?? 1,
      workers: opts.workers ?? 1,
      trace: this.trace,
    });
    const adminOpts: ConstructorParameters<typeof AdminApi>[0] = {
      store: opts.store,
      prefix: this.prefix,
      storePrefix: this.storePrefix,
      clock: opts.clock,
      checkPlugin: (name, conf) => this.engine.checkPlugin(name, conf),
    };
    if (opts.adminKey) adminOpts.apiKey = opts.adminKey;
    this.admin = new AdminApi(adminOpts);
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(opts);
    try {
      await gw.engine.start();
      await gw.config.start();
    } catch (e) {
      await gw.stop();
      throw e;
    }
    return gw;
  }

  get version(): GatewayVersion {
    return this.opts.version;
  }

  get workers(): number {
    return this.opts.workers ?? 1;
  }

  async handleAdmin(req: GatewayRequest): Promise<GatewayResponse> {
    const res = await this.admin.handle(req);
    this.trace.admin(req.method.toUpperCase(), req.path, res.status);
    return res;
  }

  /** A data-plane request, to the given worker or to the next one in turn. */
  async handleData(req: GatewayRequest, worker?: number): Promise<GatewayResponse> {
    const [res, w] = await this.routeData(req, worker);
    this.trace.request(req.method.toUpperCase(), req.path, res.status, res.headers[INSTANCE_HEADER], this.workers > 1 ? w : undefined);
    return res;
  }

  /** The answer, and the worker that handled the request (none when it was refused before). */
  private async routeData(req: GatewayRequest, worker?: number): Promise<[GatewayResponse, number?]> {
    const route = matchRoute(this.config.routes(), req.method, req.path);
    if (!route) return [jsonResponse(404, { error_msg: "404 Route Not Found" })];
    if (!route.value.plugins?.[PLUGIN_NAME]) return [jsonResponse(502, { error_msg: "route has no upstream" })];
    if (worker !== undefined && !(Number.isInteger(worker) && worker >= 0 && worker < this.workers)) {
      return [jsonResponse(400, { error_msg: `no worker ${worker}: this gateway runs ${this.workers} worker(s), numbered from 0` })];
    }
    const w = worker ?? this.nextWorker++ % this.workers;
    return [await this.engine.handle(route, req, w), w];
  }

  /**
   * The control API. GET /v1/healthcheck answers as APISIX does: it lists the checkers of routes,
   * services and upstreams that have `checks` themselves (control/v1.lua@3.15.0:97-110,178-187),
   * never ai-proxy-multi's, so here it is `{}`. What the harness looks at is its own:
   * /v1/harness/checkers and /v1/harness/pools (worker 0, or ?worker=k).
   */
  async handleControl(req: GatewayRequest): Promise<GatewayResponse> {
    const [rawPath, query = ""] = req.path.split("?");
    const path = rawPath!.replace(/\/+$/, "");
    if (req.method.toUpperCase() !== "GET") return jsonResponse(405, { error_msg: "only GET" });
    if (path === "/v1/healthcheck") return jsonResponse(200, {});
    if (path === "/v1/harness/checkers" || path === "/v1/harness/pools") {
      const w = new URLSearchParams(query).get("worker");
      const worker = w === null ? 0 : Number(w);
      if (!Number.isInteger(worker) || worker < 0 || worker >= this.workers) return jsonResponse(400, { error_msg: `no worker ${w}: this gateway runs ${this.workers} worker(s), numbered from 0` });
      return jsonResponse(200, path.endsWith("checkers") ? await this.checkers(worker) : await this.pools(worker));
    }
    return jsonResponse(404, { error_msg: "not found" });
  }

  /** The `dns` step: a name's addresses (loopback only, in this order) from now on, for every engine. */
  async setDns(name: string, addresses: string[]): Promise<void> {
    this.opts.resolver.add(name, addresses);
    await this.engine.dnsChanged(name, this.opts.resolver.resolveAll(name));
  }

  /** When the health-check manager's timers next run (see Engine.nextTick). */
  nextTick(): Promise<number | undefined> {
    return this.engine.nextTick();
  }

  /** The name of the checker of a route's ai-proxy-multi instance, as the manager names it. */
  checkerName(route: string, instance: number): string {
    return `upstream#${this.prefix}/routes/${route}#plugins['${PLUGIN_NAME}'].instances[${instance}]`;
  }

  /** The `health` step: a target's health in the shared health store, as another worker sets it. */
  setTargetHealth(route: string, instance: number, target: { ip: string; port: number; hostname?: string; healthy: boolean }): Promise<void> {
    return this.engine.setTargetHealth({ checker: this.checkerName(route, instance), ...target });
  }

  inject(i: Injection): Promise<void> {
    return this.engine.inject(i);
  }

  restore(module: string, fn: string): Promise<void> {
    return this.engine.restore(module, fn);
  }

  call(c: PluginCall): Promise<PluginCallResult[]> {
    return this.engine.call(c);
  }

  async etcd(action: EtcdAction): Promise<void> {
    switch (action) {
      case "compact":
        this.config.compactedAt = await compactNow(this.opts.store);
        return;
      case "restart":
        await this.opts.store.restart();
        return this.config.settle();
      case "disconnect":
        return this.config.disconnect();
      case "reconnect":
        return this.config.reconnect();
    }
  }

  workerStates(): Promise<WorkerState[]> {
    return this.engine.inspect();
  }

  async checkers(worker = 0): Promise<CheckerView[]> {
    return (await this.engine.inspect())[worker]?.checkers ?? [];
  }

  async pools(worker = 0): Promise<PoolsView> {
    return (await this.engine.inspect())[worker]?.pools ?? { waiting: {}, working: {} };
  }

  async stop(): Promise<void> {
    await this.engine.stop();
    await this.config.stop();
  }
}
