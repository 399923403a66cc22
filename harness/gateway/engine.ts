import type { Clock } from "./clock/clock.ts";
import type { ConfigCache, ConfigEtcdBehaviour, ConfigItem } from "./config/config-cache.ts";
import type { GatewayRequest, GatewayResponse } from "./http-types.ts";
import type { ErrorLog, LogLevel } from "./log/error-log.ts";
import type { Transport } from "./net/transport.ts";
import type { Resolver } from "./resolver/resolver.ts";
import type { Tracer } from "./trace.ts";

/**
 * What runs APISIX's code inside the gateway. The world around it (store, config cache, Admin
 * API, router, backends, resolver, clock, error log) is the same for every engine:
 * - `model`: our TypeScript model of ai-proxy-multi, the health-check manager and the checker;
 * - `lua`: APISIX's own Lua at a version, run by LuaJIT worker processes.
 */
export type EngineKind = "model" | "lua";

/**
 * The order in which a worker walks a table's keys (`pairs()`/`next()`): `hash`, LuaJIT's own
 * (decided by the seed, and by the strings the worker made before; the model cannot reproduce
 * it), or `sorted`, key order on both engines, so that no walk is left to chance.
 */
export type TableOrder = "hash" | "sorted";

export interface EngineEnv {
  clock: Clock;
  log: ErrorLog;
  transport: Transport;
  resolver: Resolver;
  config: ConfigCache;
  /** etcd key prefix (APISIX's default is /apisix). */
  prefix: string;
  logLevel: LogLevel;
  /** Decides what APISIX leaves to chance (pool order, picker start, DNS pick). */
  seed: number;
  /** How tables are walked (default `hash`). */
  order?: TableOrder;
  /** nginx worker processes (each with its own config objects, pools and timers). */
  workers: number;
  /**
   * The run's timeline: an engine reports manager ticks (with the pools after each), checker
   * lifecycle, probes and health changes through it (admin writes, requests and log lines are
   * recorded by the gateway). A no-op unless the run records a timeline.
   */
  trace: Tracer;
}

export interface CheckerNode {
  ip: string;
  port: number;
  hostname?: string;
  status: string;
  counter: Record<string, number>;
}

export interface CheckerView {
  /** The resource path the checker belongs to. */
  name: string;
  type: string;
  nodes: CheckerNode[];
}

export interface PoolsView {
  waiting: Record<string, string>;
  working: Record<string, { version: string; checker: string; dead: boolean }>;
}

/** The health-check state of one worker, as the harness looks at it. */
export interface WorkerState {
  worker: number;
  pid: number;
  pools: PoolsView;
  checkers: CheckerView[];
}

/** A plugin conf checked as the Admin API checks it: the conf with defaults, or the error. */
export type PluginCheck = { ok: true; conf: unknown } | { ok: false; error: string };

/**
 * A function of a loaded module replaced by one that raises or returns what it is told, as
 * APISIX's tests do (`plugin.construct_upstream = function() ... end` in init_worker).
 */
export interface Injection {
  /** Lua module name, e.g. `apisix.plugins.ai-proxy-multi`. */
  module: string;
  function: string;
  /** Raise this message (exactly this text, no position). */
  raises?: string;
  /** Return these values (null is nil); `[]` returns nothing. */
  returns?: unknown[];
  /** The first `after` calls still run the real function. */
  after?: number;
}

/** A direct call of a module's function with one JSON argument, `times` times on the same argument. */
export interface PluginCall {
  module: string;
  function: string;
  /** undefined: called with nil. */
  arg?: unknown;
  times: number;
}

/** What one call gave: its two return values (nil is null), or the error it raised; and its argument afterwards. */
export interface PluginCallResult {
  result: unknown;
  error: unknown;
  raised?: string;
  arg: unknown;
}

/**
 * One target's health in the shared health store, set as another worker's checker of that name
 * would: added with this health when the store does not have it yet (lua-resty-healthcheck's
 * add_target), forced when it does (set_target_status).
 */
export interface TargetHealth {
  /** The checker's name: `upstream#<resource path>`. */
  checker: string;
  ip: string;
  port: number;
  /** The target's hostname (lua-resty-healthcheck defaults it to the ip). */
  hostname?: string;
  healthy: boolean;
}

/** The module and function the model engine can replace or call: construct_upstream of ai-proxy-multi. */
export const CONSTRUCT_UPSTREAM = { module: "apisix.plugins.ai-proxy-multi", function: "construct_upstream" } as const;

export interface Engine {
  readonly kind: EngineKind;
  /** One line for run records: version, sources, workers. */
  readonly description: string;
  start(): Promise<void>;
  /** The access phase of the route's plugins and the proxying of the request. */
  handle(route: ConfigItem, req: GatewayRequest, worker?: number): Promise<GatewayResponse>;
  /** The plugin's check_schema, as the Admin API runs it before storing a route. */
  checkPlugin(name: string, conf: unknown): Promise<PluginCheck>;
  /** Pools and checkers of each worker. */
  inspect(): Promise<WorkerState[]>;
  /** A name's addresses changed in the resolver (the `dns` step): resolve it anew from now on. */
  dnsChanged(name: string, addresses: string[]): Promise<void>;
  /** Replace a function (every worker); `restore` puts the real one back. */
  inject(injection: Injection): Promise<void>;
  restore(module: string, fn: string): Promise<void>;
  /** Set a target's health in the shared health store, as another worker would. */
  setTargetHealth(target: TargetHealth): Promise<void>;
  /** Call a module's function directly (in worker 0). */
  call(call: PluginCall): Promise<PluginCallResult[]>;
  /**
   * When the health-check manager's two timers next run (ms on the clock, after now): init_worker
   * arms both with ngx.timer.every(1), so they run together every second from then. Undefined
   * when no manager timer is armed.
   */
  nextTick(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** An engine cannot do what a step asks (the model replaces and calls construct_upstream only). */
export class EngineUnsupported extends Error {}

/**
 * A version under test on an engine: a model profile ("3.15.0", "suggested") or APISIX's Lua
 * at a source ("3.15.0", "HEAD", "worktree", "3.16.0+fix.diff").
 */
export interface GatewayVersion {
  readonly name: string;
  readonly engine: EngineKind;
  /** One line for listings. */
  readonly summary: string;
  /** The `harness serve` options (besides --version) that rebuild this version in a child. */
  readonly serveArgs: string[];
  /** How this version's core/config_etcd.lua follows etcd (the world reproduces it for both engines). */
  readonly configEtcd: ConfigEtcdBehaviour;
  createEngine(env: EngineEnv): Engine;
}

/** The same version with its tables walked in `order` (the option reaches the engine, and a `serve` child). */
export function inOrder<V extends GatewayVersion>(version: V, order: TableOrder): V {
  if (order === "hash") return version;
  return { ...version, serveArgs: [...version.serveArgs, "--order", order], createEngine: (env: EngineEnv) => version.createEngine({ ...env, order }) };
}

/** The label of a differential-run disagreement that went away when both engines walked tables in key order. */
export const PAIRS_ORDER_CHANCE = "chance: pairs() order (agrees when both walk tables in key order)";

/** Lua errors in a request (not caught by APISIX) fail the run: the report carries the traceback. */
export class LuaRequestError extends Error {
  constructor(readonly traceback: string) {
    super(`Lua error in a request: ${traceback}`);
  }
}

export type { ConfigItem, GatewayRequest, GatewayResponse, LogLevel };
