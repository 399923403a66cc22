import { describeSchemaError } from "./admin/schema-errors.ts";
import { adminValidators } from "./admin/validators.ts";
import type { CheckerView, Engine, EngineEnv, GatewayVersion, PluginCheck, PoolsView, WorkerState } from "./engine.ts";
import { HealthCheckManager } from "./healthcheck/manager.ts";
import type { ConfigItem, GatewayRequest, GatewayResponse } from "./engine.ts";
import { AiProxyMulti, PLUGIN_NAME } from "./plugins/ai-proxy-multi/plugin.ts";
import type { VersionProfile } from "./versions/profile.ts";

const MODEL_PID = 4242;

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

/** Our TypeScript model of ai-proxy-multi, the health-check manager and the checker, for one profile. */
export class ModelEngine implements Engine {
  readonly kind = "model" as const;
  readonly manager: HealthCheckManager;
  readonly plugin: AiProxyMulti;

  constructor(
    readonly profile: VersionProfile,
    env: EngineEnv,
  ) {
    const fetchLatestConf = (path: string) => env.config.fetchLatestConf(path);
    const plugins: Record<string, AiProxyMulti> = {};
    this.manager = new HealthCheckManager({ clock: env.clock, log: env.log, transport: env.transport, fetchLatestConf, plugins, trace: env.trace }, profile.manager);
    this.plugin = new AiProxyMulti(profile, { resolver: env.resolver, log: env.log, transport: env.transport, manager: this.manager, fetchLatestConf });
    plugins[PLUGIN_NAME] = this.plugin;
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
