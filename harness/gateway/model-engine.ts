import { describeSchemaError } from "./admin/schema-errors.ts";
import { adminValidators } from "./admin/validators.ts";
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
import { HealthCheckManager, type UpstreamConstructor } from "./healthcheck/manager.ts";
import type { ConfigItem, GatewayRequest, GatewayResponse } from "./engine.ts";
import { errorText } from "./lua/lua-error.ts";
import type { ErrorLog } from "./log/error-log.ts";
import type { ConstructResult } from "./plugins/ai-proxy-multi/construct-upstream.ts";
import { parseEndpointByPattern } from "./plugins/ai-proxy-multi/endpoint.ts";
import { AiProxyMulti, PLUGIN_NAME } from "./plugins/ai-proxy-multi/plugin.ts";
import type { Instance, Upstream } from "./plugins/ai-proxy-multi/types.ts";
import type { VersionProfile } from "./versions/profile.ts";

const MODEL_PID = 4242;

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

/**
 * The model's stand-in for the health a checker finds in the shared dict when it adds a target
 * another worker already added. Keyed like lua-resty-healthcheck's shm keys: checker name, ip,
 * port, hostname (defaulting to the ip).
 */
class SeededHealth {
  private readonly states = new Map<string, boolean>();

  private key(checker: string, ip: string, port: number, hostname?: string): string {
    return `${checker}|${ip}|${port}|${hostname ?? ip}`;
  }

  get(checker: string, ip: string, port: number, hostname?: string): boolean | undefined {
    return this.states.get(this.key(checker, ip, port, hostname));
  }

  set(t: TargetHealth): void {
    this.states.set(this.key(t.checker, t.ip, t.port, t.hostname), t.healthy);
  }
}

/** Our TypeScript model of ai-proxy-multi, the health-check manager and the checker, for one profile. */
export class ModelEngine implements Engine {
  readonly kind = "model" as const;
  readonly manager: HealthCheckManager;
  readonly plugin: AiProxyMulti;
  /** The plugins the manager builds upstreams with: an `inject` step replaces an entry here. */
  private readonly plugins: Record<string, UpstreamConstructor> = {};
  private readonly seeded = new SeededHealth();
  private readonly log: ErrorLog;

  constructor(
    readonly profile: VersionProfile,
    env: EngineEnv,
  ) {
    const fetchLatestConf = (path: string) => env.config.fetchLatestConf(path);
    this.log = env.log;
    this.manager = new HealthCheckManager({ clock: env.clock, log: env.log, transport: env.transport, fetchLatestConf, plugins: this.plugins, trace: env.trace, sharedHealth: this.seeded }, profile.manager);
    this.plugin = new AiProxyMulti(profile, { resolver: env.resolver, log: env.log, transport: env.transport, manager: this.manager, fetchLatestConf });
    this.plugins[PLUGIN_NAME] = this.plugin;
  }

  get description(): string {
    return `model ${this.profile.name}`;
  }

  async start(): Promise<void> {
    this.manager.start();
  }

  handle(route: ConfigItem, req: GatewayRequest): Promise<GatewayResponse> {
    return this.plugin.access(route, req);
  }

  async checkPlugin(name: string, conf: unknown): Promise<PluginCheck> {
    return checkModelPlugin(this.profile, name, conf);
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

  async inspect(): Promise<WorkerState[]> {
    return [{ worker: 0, pid: MODEL_PID, pools: this.pools(), checkers: this.checkers() }];
  }

  /** The model resolves through the gateway's resolver on every resolve: nothing to refresh. */
  async dnsChanged(): Promise<void> {}

  /** Through the profile's strategy: the manager's ai-proxy-multi entry becomes the replacement. */
  async inject(i: Injection): Promise<void> {
    requireConstructUpstream(i.module, i.function);
    const real = this.plugin;
    let calls = 0;
    this.plugins[PLUGIN_NAME] = {
      constructUpstream: (instance) => {
        calls += 1;
        if (calls <= (i.after ?? 0)) return real.constructUpstream(instance);
        if (i.raises !== undefined) throw new Error(i.raises);
        return asConstructResult(i.returns ?? []);
      },
    };
  }

  async restore(module: string, fn: string): Promise<void> {
    requireConstructUpstream(module, fn);
    this.plugins[PLUGIN_NAME] = this.plugin;
  }

  /**
   * Another worker's checker of that name: a checker created later finds this health for the
   * target; a live one with the target is forced to it (and says so, as set_target_status does).
   */
  async setTargetHealth(t: TargetHealth): Promise<void> {
    let present = this.seeded.get(t.checker, t.ip, t.port, t.hostname) !== undefined;
    this.seeded.set(t);
    for (const item of this.manager.workingPool.values()) {
      if (item.checker.name === t.checker && item.checker.forceHealth(t.ip, t.port, t.hostname, t.healthy)) present = true;
    }
    // The library's checker:log line, as the model's checker writes it.
    if (present) this.log.write("warn", { file: "healthcheck.lua", line: 1150, fn: "log" }, `[healthcheck] (${t.checker}) ${t.healthy ? "healthy" : "unhealthy"} forced for ${t.hostname ?? t.ip} ${t.ip}:${t.port}`);
  }

  async call(c: PluginCall): Promise<PluginCallResult[]> {
    requireConstructUpstream(c.module, c.function);
    const arg = c.arg === undefined || c.arg === null ? undefined : (structuredClone(c.arg) as Instance);
    const out: PluginCallResult[] = [];
    for (let n = 0; n < c.times; n++) {
      try {
        const r = this.plugins[PLUGIN_NAME]!.constructUpstream(arg);
        out.push({ result: r.ok ? snapshot(r.upstream) : null, error: r.ok ? null : (r.error ?? null), arg: snapshot(arg) });
      } catch (e) {
        out.push({ result: null, error: null, raised: errorText(e), arg: snapshot(arg) });
      }
    }
    return out;
  }

  async stop(): Promise<void> {
    this.manager.stop();
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
