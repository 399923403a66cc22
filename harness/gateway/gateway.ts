import { AdminApi } from "./admin/admin-api.ts";
import type { Clock } from "./clock/clock.ts";
import { ConfigCache } from "./config/config-cache.ts";
import type { Store } from "./config/store.ts";
import { HealthCheckManager } from "./healthcheck/manager.ts";
import { jsonResponse, type GatewayRequest, type GatewayResponse } from "./http-types.ts";
import { ErrorLog, type LogLevel } from "./log/error-log.ts";
import type { Transport } from "./net/transport.ts";
import { AiProxyMulti, PLUGIN_NAME } from "./plugins/ai-proxy-multi/plugin.ts";
import type { Resolver } from "./resolver/resolver.ts";
import { matchRoute } from "./router/router.ts";
import type { VersionProfile } from "./versions/profile.ts";

export interface GatewayOptions {
  profile: VersionProfile;
  store: Store;
  clock: Clock;
  transport: Transport;
  resolver: Resolver;
  /** etcd key prefix (APISIX's default is /apisix). */
  prefix?: string;
  adminKey?: string;
  logLevel?: LogLevel;
  logFile?: string;
  logSink?: (line: string) => void;
}

export interface CheckerView {
  name: string;
  type: string;
  nodes: { ip: string; port: number; hostname?: string; status: "healthy" | "unhealthy"; counter: Record<string, number> }[];
}

export interface PoolsView {
  waiting: Record<string, string>;
  working: Record<string, { version: string; checker: string; dead: boolean }>;
}

/**
 * The reference gateway: one APISIX worker's worth of the parts involved in #13101, wired
 * together for one version profile. It speaks the Admin API, the data plane and the control API
 * as handler calls; `serve` puts HTTP servers in front of them.
 */
export class Gateway {
  readonly log: ErrorLog;
  readonly config: ConfigCache;
  readonly manager: HealthCheckManager;
  readonly plugin: AiProxyMulti;
  readonly admin: AdminApi;
  readonly prefix: string;

  private constructor(readonly opts: GatewayOptions) {
    this.prefix = opts.prefix ?? "/apisix";
    const logOpts: ConstructorParameters<typeof ErrorLog>[0] = { clock: opts.clock, level: opts.logLevel ?? "warn" };
    if (opts.logFile) logOpts.file = opts.logFile;
    if (opts.logSink) logOpts.sink = opts.logSink;
    this.log = new ErrorLog(logOpts);
    this.config = new ConfigCache(opts.store, this.prefix, this.log);
    const fetchLatestConf = (path: string) => this.config.fetchLatestConf(path);
    const plugins: Record<string, AiProxyMulti> = {};
    this.manager = new HealthCheckManager({ clock: opts.clock, log: this.log, transport: opts.transport, fetchLatestConf, plugins }, opts.profile.manager);
    this.plugin = new AiProxyMulti(opts.profile, { resolver: opts.resolver, log: this.log, transport: opts.transport, manager: this.manager, fetchLatestConf });
    plugins[PLUGIN_NAME] = this.plugin;
    const adminOpts: ConstructorParameters<typeof AdminApi>[0] = { store: opts.store, prefix: this.prefix, clock: opts.clock, parseEndpoint: opts.profile.parseEndpoint };
    if (opts.adminKey) adminOpts.apiKey = opts.adminKey;
    this.admin = new AdminApi(adminOpts);
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(opts);
    await gw.config.start();
    gw.manager.start();
    return gw;
  }

  get profile(): VersionProfile {
    return this.opts.profile;
  }

  handleAdmin(req: GatewayRequest): Promise<GatewayResponse> {
    return this.admin.handle(req);
  }

  async handleData(req: GatewayRequest): Promise<GatewayResponse> {
    const route = matchRoute(this.config.routes(), req.method, req.path);
    if (!route) return jsonResponse(404, { error_msg: "404 Route Not Found" });
    if (!route.value.plugins?.[PLUGIN_NAME]) return jsonResponse(502, { error_msg: "route has no upstream" });
    return this.plugin.access(route, req);
  }

  /** The control API: GET /v1/healthcheck as APISIX serves it, plus /v1/healthcheck/pools. */
  handleControl(req: GatewayRequest): GatewayResponse {
    const path = req.path.split("?")[0]!.replace(/\/+$/, "");
    if (req.method.toUpperCase() !== "GET") return jsonResponse(405, { error_msg: "only GET" });
    if (path === "/v1/healthcheck") return jsonResponse(200, this.checkers());
    if (path === "/v1/healthcheck/pools") return jsonResponse(200, this.pools());
    return jsonResponse(404, { error_msg: "not found" });
  }

  checkers(): CheckerView[] {
    return [...this.manager.workingPool.entries()].map(([path, item]) => ({
      name: path,
      type: item.checker.checks.active?.type ?? "http",
      nodes: item.checker.targetList().map((t) => {
        const node: CheckerView["nodes"][number] = { ip: t.ip, port: t.port, status: t.healthy ? "healthy" : "unhealthy", counter: { ...t.counter } };
        if (t.hostname !== undefined) node.hostname = t.hostname;
        return node;
      }),
    }));
  }

  pools(): PoolsView {
    const working: PoolsView["working"] = {};
    for (const [path, item] of this.manager.workingPool) working[path] = { version: item.version, checker: String(item.checker), dead: item.checker.dead };
    return { waiting: Object.fromEntries(this.manager.waitingPool), working };
  }

  async stop(): Promise<void> {
    this.manager.stop();
    await this.config.stop();
  }
}
