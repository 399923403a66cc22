import { describeSchemaError } from "./admin/schema-errors.ts";
import { adminValidators } from "./admin/validators.ts";
import type { ConfigChange } from "./config/config-cache.ts";
import type { CheckerView, Engine, EngineEnv, GatewayVersion, PluginCheck, PoolsView, WorkerState } from "./engine.ts";
import type { ConfigItem, GatewayRequest, GatewayResponse } from "./engine.ts";
import { EventBus } from "./healthcheck/events.ts";
import { HEALTHCHECK_SHM } from "./healthcheck/health-shm.ts";
import { HealthcheckLibrary, type LogWriter } from "./healthcheck/library.ts";
import { HashOrder, LuaRandom } from "./healthcheck/lua-random.ts";
import { HealthCheckManager } from "./healthcheck/manager.ts";
import type { ErrorLog } from "./log/error-log.ts";
import { AiProxyMulti, PLUGIN_NAME } from "./plugins/ai-proxy-multi/plugin.ts";
import { SharedDict } from "./shared-dict.ts";
import type { VersionProfile } from "./versions/profile.ts";

/** The first worker's pid in log lines; worker k has BASE_PID + k (as the lua engine's). */
const BASE_PID = 4242;

/**
 * The model's check_schema: our JSON Schema of the plugin plus the release's endpoint parser.
 * Defaults are filled into `conf` itself, as AdminApi.check does for the route around it (its
 * caller owns both): structured-cloning it first was the largest single cost of a lifecycle run.
 */
export function checkModelPlugin(profile: VersionProfile, name: string, conf: unknown): PluginCheck {
  if (name !== PLUGIN_NAME) return { ok: false, error: `unknown plugin [${name}]` };
  const validate = adminValidators().plugin;
  if (!validate(conf)) return { ok: false, error: `failed to check the configuration of plugin ${name} err: ${describeSchemaError(validate.errors)}` };
  const instances = (conf as { instances: { override?: { endpoint?: string } }[] }).instances;
  for (const ins of instances) {
    const ep = ins.override?.endpoint;
    if (ep !== undefined && !profile.parseEndpoint(ep)) return { ok: false, error: `failed to check the configuration of plugin ${name} err: invalid endpoint` };
  }
  return { ok: true, conf };
}

/** An ErrorLog as one worker writes to it: its own pid on every line. */
function workerLog(log: ErrorLog, pid: number): LogWriter {
  if (pid === BASE_PID) return log;
  return {
    write: (level, source, message, context = "ngx.timer") => {
      const entry: Parameters<ErrorLog["writeEntry"]>[0] = { level, file: source.file, line: source.line, message, suffix: context.startsWith("client:") ? context : `context: ${context}`, pid };
      if (source.fn) entry.fn = source.fn;
      log.writeEntry(entry);
    },
  };
}

/**
 * A worker's own config objects, built from the config cache's change feed as each nginx worker
 * builds its own from its own watch: runtime fields one worker's requests set are not on the
 * other's. A reload keeps the objects the release keeps (`kept`, 3.18.0).
 */
class WorkerConfig {
  private readonly items = new Map<string, ConfigItem>();

  constructor(private readonly world: EngineEnv["config"]) {}

  private own(item: ConfigItem): void {
    this.items.set(item.key, { ...item, value: JSON.parse(item.raw) as ConfigItem["value"] });
  }

  apply(change: ConfigChange): void {
    if (change.kind === "put") this.own(change.item);
    else if (change.kind === "delete") this.items.delete(change.key);
    else {
      const kept = new Set(change.kept);
      const before = new Map(this.items);
      this.items.clear();
      for (const item of change.items) {
        const mine = kept.has(item.key) ? before.get(item.key) : undefined;
        if (mine) this.items.set(item.key, mine);
        else this.own(item);
      }
    }
  }

  get(key: string): ConfigItem | undefined {
    return this.items.get(key);
  }

  fetchLatestConf(resourcePath: string): ConfigItem | undefined {
    const item = this.world.fetchLatestConf(resourcePath);
    return item && this.items.get(item.key);
  }
}

/** One nginx worker of the model: its own config objects, pools, timers, checkers and picker cache. */
class ModelWorker {
  readonly pid: number;
  readonly log: LogWriter;
  readonly lib: HealthcheckLibrary;
  readonly manager: HealthCheckManager;
  readonly plugin: AiProxyMulti;
  /** Undefined for worker 0, which uses the config cache's own objects. */
  readonly config: WorkerConfig | undefined;

  constructor(
    readonly index: number,
    profile: VersionProfile,
    env: EngineEnv,
    shared: { dict: SharedDict; events: EventBus; order: HashOrder },
  ) {
    this.pid = BASE_PID + index;
    this.log = workerLog(env.log, this.pid);
    this.config = index === 0 ? undefined : new WorkerConfig(env.config);
    const random = new LuaRandom(env.seed * 1000 + index);
    const several = env.workers > 1;
    this.lib = new HealthcheckLibrary({
      clock: env.clock,
      transport: env.transport,
      log: this.log,
      trace: env.trace,
      dict: shared.dict,
      events: shared.events.workers[index]!,
      behaviour: profile.healthcheck,
      random,
      pid: this.pid,
      mode: several ? "shared" : "solo",
    });
    const notFound = profile.pick.lines.resourceNotFound;
    const fetchLatestConf = (path: string, context = "ngx.timer"): ConfigItem | undefined => {
      const item = this.config ? this.config.fetchLatestConf(path) : env.config.fetchLatestConf(path);
      if (!item) {
        // resource.lua warns about a route id that is not (or no longer) there.
        const key = path.split("#")[0]!;
        const id = /^\/routes\/([^/]+)$/.exec(key.startsWith(`${env.prefix}/`) ? key.slice(env.prefix.length) : key)?.[1];
        if (id !== undefined) this.log.write("warn", notFound, `resource not found: ${id} in /routesthis can happen if the resource was deleted`, context);
      }
      return item;
    };
    const plugins: Record<string, AiProxyMulti> = {};
    const worker = several ? index : undefined;
    const managerEnv: ConstructorParameters<typeof HealthCheckManager>[0] = { clock: env.clock, log: this.log, lib: this.lib, order: shared.order, fetchLatestConf, plugins, trace: env.trace };
    if (worker !== undefined) managerEnv.worker = worker;
    this.manager = new HealthCheckManager(managerEnv, profile.manager);
    this.plugin = new AiProxyMulti(profile, { resolver: env.resolver, log: this.log, transport: env.transport, manager: this.manager, fetchLatestConf, order: shared.order, random });
    plugins[PLUGIN_NAME] = this.plugin;
  }

  checkers(): CheckerView[] {
    return [...this.manager.workingPool.entries()].map(([path, item]) => ({
      name: path,
      type: item.checker.type,
      nodes: item.checker.targetList().map((t) => ({ ip: t.ip, port: t.port, hostname: t.hostname, status: t.status ?? "healthy", counter: { ...t.counter } })),
    }));
  }

  pools(): PoolsView {
    const working: PoolsView["working"] = {};
    for (const [path, item] of this.manager.workingPool) working[path] = { version: item.version, checker: String(item.checker), dead: item.checker.dead };
    return { waiting: Object.fromEntries(this.manager.waitingPool), working };
  }
}

/**
 * Our TypeScript model of ai-proxy-multi, the health-check manager and lua-resty-healthcheck,
 * for one profile, in `workers` nginx workers: each has its own config objects, pools, timers
 * and pid; health lives in one `upstream-healthcheck` dict they share, and the library's events
 * reach every worker.
 */
export class ModelEngine implements Engine {
  readonly kind = "model" as const;
  readonly workers: ModelWorker[] = [];
  readonly dict: SharedDict;

  constructor(
    readonly profile: VersionProfile,
    private readonly env: EngineEnv,
  ) {
    this.dict = new SharedDict(HEALTHCHECK_SHM, env.clock);
    const events = new EventBus(env.clock, env.workers, (_worker, source, event, data) => {
      const healthy = event === "healthy" || event === "mostly_healthy" ? true : event === "unhealthy" || event === "mostly_unhealthy" ? false : undefined;
      if (healthy !== undefined) env.trace.health(source.replace(/^lua-resty-healthcheck \[(.*)\]$/, "$1"), `${data.ip}:${data.port}`, healthy);
    });
    const shared = { dict: this.dict, events, order: new HashOrder(env.seed, env.prefix) };
    for (let i = 0; i < env.workers; i++) this.workers.push(new ModelWorker(i, profile, env, shared));
  }

  /** The first worker's manager and plugin (the only ones with one worker). */
  get manager(): HealthCheckManager {
    return this.workers[0]!.manager;
  }

  get plugin(): AiProxyMulti {
    return this.workers[0]!.plugin;
  }

  get description(): string {
    return `model ${this.profile.name} (lua-resty-healthcheck ${this.profile.healthcheck.version}; ${this.env.workers} worker(s))`;
  }

  async start(): Promise<void> {
    const own = this.workers.filter((w) => w.config);
    if (own.length > 0) this.env.config.subscribe((change) => own.forEach((w) => w.config!.apply(change)));
    for (const w of this.workers) w.manager.start();
  }

  handle(route: ConfigItem, req: GatewayRequest, worker = 0): Promise<GatewayResponse> {
    const w = this.workers[worker % this.workers.length]!;
    const mine = w.config ? w.config.get(route.key) : route;
    if (!mine) return Promise.resolve({ status: 404, headers: { "content-type": "application/json" }, body: '{"error_msg":"404 Route Not Found"}' });
    return w.plugin.access(mine, req);
  }

  async checkPlugin(name: string, conf: unknown): Promise<PluginCheck> {
    return checkModelPlugin(this.profile, name, conf);
  }

  checkers(worker = 0): CheckerView[] {
    return this.workers[worker]?.checkers() ?? [];
  }

  pools(worker = 0): PoolsView {
    return this.workers[worker]?.pools() ?? { waiting: {}, working: {} };
  }

  async inspect(): Promise<WorkerState[]> {
    return this.workers.map((w) => ({ worker: w.index, pid: w.pid, pools: w.pools(), checkers: w.checkers() }));
  }

  async stop(): Promise<void> {
    for (const w of this.workers) {
      w.manager.stop();
      w.lib.stop();
    }
  }
}

export type ModelVersion = GatewayVersion & { profile: VersionProfile };

/** A model profile as a version under test. */
export function modelVersion(profile: VersionProfile): ModelVersion {
  return {
    name: profile.name,
    engine: "model",
    summary: profile.summary,
    serveArgs: ["--engine", "model"],
    configEtcd: profile.configEtcd,
    profile,
    createEngine: (env) => new ModelEngine(profile, env),
  };
}
