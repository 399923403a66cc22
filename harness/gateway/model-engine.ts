import { describeSchemaError } from "./admin/schema-errors.ts";
import { adminValidators } from "./admin/validators.ts";
import type { ConfigChange } from "./config/config-cache.ts";
import {
  CONSTRUCT_UPSTREAM,
  EngineUnsupported,
  type CheckerView,
  type Engine,
  type EngineEnv,
  type GatewayVersion,
  type Injection,
  type PluginCall,
  type PluginCallResult,
  type PluginCheck,
  type PoolsView,
  type TargetHealth,
  type WorkerState,
} from "./engine.ts";
import type { ConfigItem, GatewayRequest, GatewayResponse } from "./engine.ts";
import { Checker } from "./healthcheck/checker.ts";
import { EventBus } from "./healthcheck/events.ts";
import { HEALTHCHECK_SHM } from "./healthcheck/health-shm.ts";
import { HealthcheckLibrary, type LogWriter } from "./healthcheck/library.ts";
import { HashOrder, LuaRandom } from "./healthcheck/lua-random.ts";
import { HealthCheckManager, type UpstreamConstructor } from "./healthcheck/manager.ts";
import { errorText } from "./lua/lua-error.ts";
import type { ErrorLog } from "./log/error-log.ts";
import type { ConstructResult } from "./plugins/ai-proxy-multi/construct-upstream.ts";
import { parseEndpointByPattern } from "./plugins/ai-proxy-multi/endpoint.ts";
import { AiProxyMulti, PLUGIN_NAME } from "./plugins/ai-proxy-multi/plugin.ts";
import type { Instance, Upstream } from "./plugins/ai-proxy-multi/types.ts";
import { SharedDict } from "./shared-dict.ts";
import type { VersionProfile } from "./versions/profile.ts";

/** The first worker's pid in log lines; worker k has BASE_PID + k (as the lua engine's). */
const BASE_PID = 4242;

/**
 * The model's check_schema: our JSON Schema of the plugin plus the endpoint pattern check.
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
    // check_schema matches every release's endpoint against the same Lua pattern, whatever parser
    // the request path uses (ai-proxy-multi.lua:34,100@3.15.0; :48,130@3.18.0).
    if (ep !== undefined && !parseEndpointByPattern(ep)) return { ok: false, error: `failed to check the configuration of plugin ${name} err: invalid endpoint` };
  }
  return { ok: true, conf };
}

function requireConstructUpstream(module: string, fn: string): void {
  if (module !== CONSTRUCT_UPSTREAM.module || fn !== CONSTRUCT_UPSTREAM.function) {
    throw new EngineUnsupported(`the model engine can replace or call only ${CONSTRUCT_UPSTREAM.module}.${CONSTRUCT_UPSTREAM.function} (its profile's constructUpstream), not ${module}.${fn}; use --engine lua`);
  }
}

/** A value as it leaves a call: plain JSON (undefined fields dropped), a snapshot. */
function snapshot(v: unknown): unknown {
  return v === undefined ? null : (JSON.parse(JSON.stringify(v)) as unknown);
}

/** construct_upstream's (upstream, err) as the model's result. */
function asConstructResult(values: unknown[]): ConstructResult {
  const [upstream, err] = values;
  if (upstream !== null && upstream !== undefined) return { ok: true, upstream: structuredClone(upstream) as Upstream };
  return err === null || err === undefined ? { ok: false } : { ok: false, error: String(err) };
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
  /** The plugins the manager builds upstreams with: an `inject` step replaces an entry here. */
  readonly plugins: Record<string, UpstreamConstructor> = {};
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
    const worker = several ? index : undefined;
    const managerEnv: ConstructorParameters<typeof HealthCheckManager>[0] = { clock: env.clock, log: this.log, lib: this.lib, order: shared.order, fetchLatestConf, plugins: this.plugins, trace: env.trace };
    if (worker !== undefined) managerEnv.worker = worker;
    this.manager = new HealthCheckManager(managerEnv, profile.manager);
    this.plugin = new AiProxyMulti(profile, { resolver: env.resolver, log: this.log, transport: env.transport, manager: this.manager, fetchLatestConf, order: shared.order, random });
    this.plugins[PLUGIN_NAME] = this.plugin;
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
    const shared = { dict: this.dict, events, order: new HashOrder(env.seed, env.prefix, env.order) };
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
    return `model ${this.profile.name} (lua-resty-healthcheck ${this.profile.healthcheck.version}; ${this.env.workers} worker(s)${this.env.order === "sorted" ? "; tables walked in key order" : ""})`;
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

  /** Every worker's manager started at init_worker, at the same instant: they tick together. */
  async nextTick(): Promise<number | undefined> {
    return this.manager.nextTick();
  }

  async inspect(): Promise<WorkerState[]> {
    return this.workers.map((w) => ({ worker: w.index, pid: w.pid, pools: w.pools(), checkers: w.checkers() }));
  }

  /** The model resolves through the gateway's resolver on every resolve: nothing to refresh. */
  async dnsChanged(): Promise<void> {}

  /** Through the profile's strategy: every worker's manager gets the replacement for ai-proxy-multi. */
  async inject(i: Injection): Promise<void> {
    requireConstructUpstream(i.module, i.function);
    let calls = 0;
    for (const w of this.workers) {
      const real = w.plugin;
      w.plugins[PLUGIN_NAME] = {
        constructUpstream: (instance) => {
          calls += 1;
          if (calls <= (i.after ?? 0)) return real.constructUpstream(instance);
          if (i.raises !== undefined) throw new Error(i.raises);
          return asConstructResult(i.returns ?? []);
        },
      };
    }
  }

  async restore(module: string, fn: string): Promise<void> {
    requireConstructUpstream(module, fn);
    for (const w of this.workers) w.plugins[PLUGIN_NAME] = w.plugin;
  }

  /**
   * As the lua engine does it in worker 0: a checker of that name that never probes adds the
   * target with that health when the shared list lacks it, and forces it otherwise.
   */
  async setTargetHealth(t: TargetHealth): Promise<void> {
    const lib = this.workers[0]!.lib;
    const hostname = t.hostname ?? t.ip;
    const shadow = Checker.create(t.checker, { active: { healthy: { interval: 0 }, unhealthy: { interval: 0 } } }, lib);
    const present = shadow.shm.targetList().some((x) => x.ip === t.ip && x.port === t.port && x.hostname === hostname);
    if (present) shadow.setTargetStatus(t.ip, t.port, hostname, t.healthy);
    else shadow.addTarget(t.ip, t.port, hostname, t.healthy);
    shadow.stop();
  }

  async call(c: PluginCall): Promise<PluginCallResult[]> {
    requireConstructUpstream(c.module, c.function);
    const constructor = this.workers[0]!.plugins[PLUGIN_NAME]!;
    const arg = c.arg === undefined || c.arg === null ? undefined : (structuredClone(c.arg) as Instance);
    const out: PluginCallResult[] = [];
    for (let n = 0; n < c.times; n++) {
      try {
        const r = constructor.constructUpstream(arg);
        out.push({ result: r.ok ? snapshot(r.upstream) : null, error: r.ok ? null : (r.error ?? null), arg: snapshot(arg) });
      } catch (e) {
        out.push({ result: null, error: null, raised: errorText(e), arg: snapshot(arg) });
      }
    }
    return out;
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
