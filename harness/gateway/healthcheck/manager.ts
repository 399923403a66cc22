import { JSONPath } from "jsonpath-plus";
import type { Clock, TimerHandle } from "../clock/clock.ts";
import type { ConfigItem } from "../config/config-cache.ts";
import { errorText, indexNil } from "../lua/lua-error.ts";
import type { ConstructResult } from "../plugins/ai-proxy-multi/construct-upstream.ts";
import type { Instance, Upstream } from "../plugins/ai-proxy-multi/types.ts";
import { NO_TRACE, type PoolsSnapshot, type TimerName, type Tracer } from "../trace.ts";
import type { ManagerBehaviour } from "./behaviour.ts";
import { Checker } from "./checker.ts";
import type { HealthcheckLibrary, LogWriter } from "./library.ts";
import type { HashOrder } from "./lua-random.ts";

const FILE = "healthcheck_manager.lua";
const TIMER_INTERVAL_MS = 1000;
/** DELAYED_CLEAR_TIMEOUT: a released checker's targets are purged this long after (s). */
const DELAYED_CLEAR_TIMEOUT = 10;

export interface WorkingItem {
  version: string;
  checker: Checker;
  checks: Upstream["checks"];
}

export interface UpstreamConstructor {
  constructUpstream(instance: Instance | undefined): ConstructResult;
}

export interface ManagerEnv {
  clock: Clock;
  log: LogWriter;
  /** lua-resty-healthcheck in this worker: checkers are created through it. */
  lib: HealthcheckLibrary;
  /** The order pairs() walks the pools in. */
  order: HashOrder;
  fetchLatestConf(resourcePath: string): ConfigItem | undefined;
  /** Plugins that build upstreams for checkers, by name. */
  plugins: Record<string, UpstreamConstructor>;
  /** Ticks and checker lifecycle on the run's timeline (and, through the checkers, probes). */
  trace?: Tracer;
  /** The worker's number, on timeline events, when the gateway runs several. */
  worker?: number;
}

const pluginNames = new Map<string, string | undefined>();

/** The plugin named in a resource path's JSON part, e.g. `plugins['ai-proxy-multi']`. */
export function pluginNameOf(resourcePath: string): string | undefined {
  if (pluginNames.has(resourcePath)) return pluginNames.get(resourcePath);
  // The timers ask for the same few paths every second.
  if (pluginNames.size >= 4096) pluginNames.clear();
  const name = readPluginName(resourcePath);
  pluginNames.set(resourcePath, name);
  return name;
}

function readPluginName(resourcePath: string): string | undefined {
  const json = resourcePath.includes("#") ? resourcePath.slice(resourcePath.indexOf("#") + 1) : resourcePath;
  return /^plugins\['([^']+)'\]/.exec(json)?.[1] ?? /^plugins\["([^"]+)"\]/.exec(json)?.[1] ?? /^plugins\.([^.]+)/.exec(json)?.[1];
}

export function jsonPathOf(resourcePath: string): string {
  return "$." + resourcePath.slice(resourcePath.indexOf("#") + 1);
}

export function upstreamVersion(modifiedIndex: number, nodesVer: number | undefined): string {
  return `${modifiedIndex}${nodesVer ?? ""}`;
}

/**
 * healthcheck_manager: checkers for resources, keyed by resource path. Requests ask for a checker
 * at a version (`fetchChecker`); two 1-second timers build the waiting ones and retire the ones
 * whose resource changed. The behaviour that differs between releases comes from `behaviour`.
 */
export class HealthCheckManager {
  /** resource path -> wanted version */
  readonly waitingPool = new Map<string, string>();
  /** resource path -> working checker and its version */
  readonly workingPool = new Map<string, WorkingItem>();
  private timers: TimerHandle[] = [];
  /** When start() armed the timers (init_worker): they run every TIMER_INTERVAL_MS from then. */
  private startedAt: number | undefined;
  /**
   * JSONPath results per config object and path. A config object is replaced, never reshaped, on
   * a change (runtime fields are added to the instances it holds, not new instances), so the
   * answer for one object stays the same; the timers ask every second.
   */
  private readonly located = new WeakMap<object, Map<string, Instance | undefined>>();
  private readonly trace: Tracer;

  constructor(
    private readonly env: ManagerEnv,
    private readonly behaviour: ManagerBehaviour,
  ) {
    this.trace = env.trace ?? NO_TRACE;
  }

  start(): void {
    this.startedAt = this.env.clock.now();
    this.timers.push(this.env.clock.every(TIMER_INTERVAL_MS, () => this.protectedRun("create", "timer_create_checker", this.behaviour.lines.createFailed, () => this.timerCreateChecker())));
    this.timers.push(this.env.clock.every(TIMER_INTERVAL_MS, () => this.protectedRun("working", "timer_working_pool_check", this.behaviour.lines.workingFailed, () => this.timerWorkingPoolCheck())));
  }

  /** Both pools as plain data, for the timeline. */
  poolsSnapshot(): PoolsSnapshot {
    const working: PoolsSnapshot["working"] = {};
    for (const [path, item] of this.workingPool) working[path] = { version: item.version, checker: String(item.checker) };
    return { waiting: Object.fromEntries(this.waitingPool), working };
  }

  /** When both timers next run after now: the clock's `every` keeps them on the start's phase. */
  nextTick(): number | undefined {
    if (this.startedAt === undefined || this.timers.length === 0) return undefined;
    const periods = Math.floor((this.env.clock.now() - this.startedAt) / TIMER_INTERVAL_MS) + 1;
    return this.startedAt + periods * TIMER_INTERVAL_MS;
  }

  stop(): void {
    for (const t of this.timers) t.cancel();
    this.timers = [];
  }

  fetchChecker(resourcePath: string, resourceVer: string): Checker | undefined {
    const working = this.workingPool.get(resourcePath);
    if (working && working.version === resourceVer) return working.checker;
    if (this.waitingPool.get(resourcePath) !== resourceVer) this.waitingPool.set(resourcePath, resourceVer);
    if (this.behaviour.fetchCheckerKeepsLiveChecker && working && !working.checker.dead) return working.checker;
    return undefined;
  }

  /**
   * fetch_node_status: whether a node may take traffic according to a checker. `context`: the
   * request's log suffix (this runs in the access phase).
   */
  fetchNodeStatus(checker: Checker | undefined, ip: string, port: number, hostname: string | undefined, context: string): [boolean | undefined, string?] {
    if (!checker || checker.dead) return [true];
    const [ok, err] = checker.getTargetStatus(ip, port, hostname);
    if (err === "target not found" && this.behaviour.targetNotFoundIsUsable) {
      this.env.log.write("warn", { file: FILE, line: this.behaviour.lines.targetNotFound, fn: "fetch_node_status" }, `health check target status not available yet, treat as unknown, addr: ${ip}:${port}, host: ${hostname ?? "nil"}`, context);
      return [true];
    }
    return [ok, err];
  }

  /** ngx.timer.every's callback: a pcall whose failure is logged and ends this tick's loop. */
  private async protectedRun(timer: TimerName, name: string, line: number, body: () => void): Promise<void> {
    let error: string | undefined;
    try {
      body();
    } catch (e) {
      error = errorText(e);
      this.env.log.write("error", { file: FILE, line }, `failed to run ${name}: ${error}`, "ngx.timer");
    }
    this.trace.tick(timer, error, () => this.poolsSnapshot(), this.env.worker);
  }

  /**
   * Build the upstream for a resource path from the latest config. Unguarded releases index the
   * result of construct_upstream directly, which throws when it is nil.
   */
  private buildUpstream(resourcePath: string, conf: ConfigItem, indexLine: number, phase: "creating" | "checking"): { upstream?: Upstream; constructorConfig: unknown } {
    const pluginName = pluginNameOf(resourcePath);
    // Only plugins queue checkers in this model (routes' own upstreams are not part of it).
    if (!pluginName) throw new Error(`resource path without a plugin: ${resourcePath}`);
    const jsonPath = jsonPathOf(resourcePath);
    let paths = this.located.get(conf.value);
    if (!paths) this.located.set(conf.value, (paths = new Map()));
    let constructorConfig = paths.get(jsonPath);
    if (constructorConfig === undefined && !paths.has(jsonPath)) {
      // Not started by JSONPath() itself, which hands back a result that is not an object (nothing
      // found: a removed instance) by throwing and catching an Error.
      const query = JSONPath({ path: jsonPath, json: conf.value, wrap: false, autostart: false }) as unknown as { evaluate(): unknown };
      constructorConfig = query.evaluate() as Instance | undefined;
      paths.set(jsonPath, constructorConfig);
    }
    const plugin = this.env.plugins[pluginName];
    if (!plugin) throw new Error(`module 'apisix.plugins.${pluginName}' not found`);
    if (!this.behaviour.guardsConstructResult) {
      const result = plugin.constructUpstream(constructorConfig);
      if (!result.ok) throw indexNil(FILE, indexLine, "upstream");
      result.upstream.resource_key = resourcePath;
      return { upstream: result.upstream, constructorConfig };
    }
    let result: ConstructResult;
    let raised = false;
    try {
      result = plugin.constructUpstream(constructorConfig);
    } catch (e) {
      raised = true;
      result = { ok: false, error: errorText(e) };
    }
    if (!result.ok) {
      const line = phase === "creating" ? this.behaviour.lines.guardCreate : raised ? this.behaviour.lines.guardWorkingError : this.behaviour.lines.guardWorkingWarn;
      const level = phase === "creating" || raised ? "error" : "warn";
      // The timers' bodies run through pcall, so ngx_lua names no function in these lines.
      this.env.log.write(
        level,
        { file: FILE, line },
        `[${phase} checker] unable to construct upstream for plugin: ${pluginName}, resource path: ${resourcePath}, json path: ${jsonPath}, error: ${result.error ?? (phase === "creating" ? "nil" : "unknown error")}`,
        "ngx.timer",
      );
      return { constructorConfig };
    }
    result.upstream.resource_key = resourcePath;
    return { upstream: result.upstream, constructorConfig };
  }

  /** The checker's targets for an upstream: ip, port, hostname (checks.active.host) and Host header. */
  private targetsOf(upstream: Upstream): { ip: string; port: number; host?: string; hostheader?: string; key: string }[] {
    const host = upstream.checks?.active?.host;
    const port = upstream.checks?.active?.port;
    return upstream.nodes.map((n) => {
      const t: { ip: string; port: number; host?: string; hostheader?: string; key: string } = { ip: n.host, port: port ?? n.port, key: "" };
      if (host !== undefined) t.host = host;
      const hostheader = this.behaviour.probeHostFromDomain ? n.domain : undefined;
      if (hostheader !== undefined) t.hostheader = hostheader;
      t.key = `${t.ip}:${t.port}:${host ?? t.ip}:${hostheader ?? ""}`;
      return t;
    });
  }

  /**
   * create_checker: healthcheck.new under the resource's checker name (which finds the targets and
   * health an earlier checker of that name left in the shm), then add_target for every node.
   * 3.18.0 first removes listed targets the upstream no longer has.
   */
  private createChecker(upstream: Upstream): Checker | undefined {
    if (!upstream.checks) return undefined;
    const checker = Checker.create(`upstream#${upstream.resource_key}`, upstream.checks, this.env.lib);
    const targets = this.targetsOf(upstream);
    if (this.behaviour.createRemovesStaleTargets) {
      const desired = new Set(targets.map((t) => t.key));
      for (const t of checker.shm.targetList()) if (!desired.has(`${t.ip}:${t.port}:${t.hostname}:${t.hostheader ?? ""}`)) checker.removeTarget(t.ip, t.port, t.hostname);
    }
    for (const t of targets) checker.addTarget(t.ip, t.port, t.host, true, t.hostheader);
    return checker;
  }

  /** 3.18.0's sync_checker_targets: diff the shm's target list against the upstream's nodes (checks unchanged). */
  private syncTargets(checker: Checker, upstream: Upstream): void {
    const targets = this.targetsOf(upstream);
    const desired = new Set(targets.map((t) => t.key));
    const current = new Set<string>();
    for (const t of checker.shm.targetList()) {
      const key = `${t.ip}:${t.port}:${t.hostname}:${t.hostheader ?? ""}`;
      current.add(key);
      if (!desired.has(key)) checker.removeTarget(t.ip, t.port, t.hostname);
    }
    for (const t of targets) if (!current.has(t.key)) checker.addTarget(t.ip, t.port, t.host, true, t.hostheader);
  }

  timerCreateChecker(): void {
    if (this.waitingPool.size === 0) return;
    for (const [resourcePath, resourceVer] of this.env.order.entries(this.waitingPool)) {
      this.createOne(resourcePath, resourceVer);
      // Reached only when createOne did not throw: a crash leaves the entry for the next tick.
      this.waitingPool.delete(resourcePath);
    }
  }

  private createOne(resourcePath: string, resourceVer: string): void {
    const existing = this.workingPool.get(resourcePath);
    if (existing && existing.version === resourceVer) return;
    const conf = this.env.fetchLatestConf(resourcePath);
    if (!conf) return;
    const built = this.buildUpstream(resourcePath, conf, this.behaviour.lines.createIndex, "creating");
    const upstream = built.upstream;
    if (!upstream) return;
    if (upstreamVersion(conf.modifiedIndex, upstream._nodes_ver) !== resourceVer) return;

    if (this.behaviour.keepsCheckerOnVersionChange) {
      if (upstream.nodes.length === 0) return;
      if (existing && !existing.checker.dead && upstream.checks && deepEqual(existing.checks, upstream.checks)) {
        this.syncTargets(existing.checker, upstream);
        this.workingPool.set(resourcePath, { version: resourceVer, checker: existing.checker, checks: upstream.checks });
        this.trace.checker("kept", String(existing.checker), resourcePath, this.traced({ version: resourceVer }));
        return;
      }
      // Marked before the new checker re-adds the targets, so the ones it keeps are un-marked.
      existing?.checker.delayedClear(DELAYED_CLEAR_TIMEOUT);
      const checker = this.createChecker(upstream);
      if (!checker) {
        if (existing) {
          this.env.log.write("warn", { file: FILE, line: this.behaviour.lines.releaseAfterCreateFailed }, `releasing existing checker after create failed: ${existing.checker} for resource: ${resourcePath} and version: ${existing.version}`, "ngx.timer");
          existing.checker.dead = true;
          existing.checker.stop();
          this.workingPool.delete(resourcePath);
          this.trace.checker("destroyed", String(existing.checker), resourcePath, this.traced({ version: existing.version }));
        }
        return;
      }
      this.workingPool.set(resourcePath, { version: resourceVer, checker, checks: upstream.checks });
      if (existing) {
        existing.checker.dead = true;
        existing.checker.stop();
        this.logReleased(this.behaviour.lines.releaseExisting, `releasing existing checker: ${existing.checker} for resource: ${resourcePath} and version: ${existing.version}`);
      }
      this.traceCreated(checker, resourcePath, resourceVer, existing);
      return;
    }

    if (existing) {
      existing.checker.delayedClear(DELAYED_CLEAR_TIMEOUT);
      existing.checker.stop();
      this.logReleased(this.behaviour.lines.releaseExisting, `releasing existing checker: ${existing.checker} for resource: ${resourcePath} and version: ${existing.version}`);
    }
    const checker = this.createChecker(upstream);
    if (!checker) return;
    this.workingPool.set(resourcePath, { version: resourceVer, checker, checks: upstream.checks });
    this.traceCreated(checker, resourcePath, resourceVer, existing);
  }

  /** The info line the manager writes when it lets a checker go (seen with log_level info). */
  private logReleased(line: number, message: string): void {
    this.env.log.write("info", { file: FILE, line }, message, "ngx.timer");
  }

  private traced(extra: { version?: string; previous?: string }): { version?: string; previous?: string; worker?: number } {
    return this.env.worker !== undefined ? { ...extra, worker: this.env.worker } : extra;
  }

  /** A new checker for a path that already had one is a rebuild (the old one is retired). */
  private traceCreated(checker: Checker, resourcePath: string, version: string, replaced: WorkingItem | undefined): void {
    if (replaced) this.trace.checker("rebuilt", String(checker), resourcePath, this.traced({ version, previous: String(replaced.checker) }));
    else this.trace.checker("created", String(checker), resourcePath, this.traced({ version }));
  }

  timerWorkingPoolCheck(): void {
    if (this.workingPool.size === 0) return;
    for (const [resourcePath, item] of this.env.order.entries(this.workingPool)) {
      const conf = this.env.fetchLatestConf(resourcePath);
      let destroy = true;
      if (conf) {
        const built = this.buildUpstream(resourcePath, conf, this.behaviour.lines.workingIndex, "checking");
        const upstream = built.upstream;
        // A guarded release keeps the checker through a transient failure, but not when the
        // instance itself is gone.
        if (!upstream && built.constructorConfig !== undefined) destroy = false;
        if (upstream) {
          const current = upstreamVersion(conf.modifiedIndex, upstream._nodes_ver);
          if (item.version === current) destroy = false;
          else if (this.behaviour.keepsCheckerOnVersionChange && upstream.checks && upstream.nodes.length > 0) {
            destroy = false;
            if (this.waitingPool.get(resourcePath) !== current) this.waitingPool.set(resourcePath, current);
          }
        }
      }
      if (destroy) {
        this.workingPool.delete(resourcePath);
        item.checker.dead = true;
        item.checker.delayedClear(DELAYED_CLEAR_TIMEOUT);
        item.checker.stop();
        this.logReleased(this.behaviour.lines.releaseChecker, `try to release checker: ${item.checker} for resource: ${resourcePath} and version : ${item.version}`);
        this.trace.checker("destroyed", String(item.checker), resourcePath, this.traced({ version: item.version }));
      }
    }
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
