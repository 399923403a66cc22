import type { Clock, TimerHandle } from "../clock/clock.ts";
import type { ErrorLog } from "../log/error-log.ts";
import type { ProbeResult, Transport } from "../net/transport.ts";
import type { ActiveChecks, Checks } from "../plugins/ai-proxy-multi/types.ts";
import type { Tracer } from "../trace.ts";

/** lua-resty-healthcheck's defaults, as APISIX's schema fills them in. */
export const CHECK_DEFAULTS = {
  type: "http" as const,
  timeout: 1,
  http_path: "/",
  healthy: { interval: 1, successes: 2, http_statuses: [200, 302] },
  unhealthy: {
    interval: 1,
    http_failures: 5,
    tcp_failures: 2,
    timeouts: 3,
    http_statuses: [429, 404, 500, 501, 502, 503, 504, 505],
  },
};

/** Delay before a new target's first probe (the library's check timer runs every 0.1 s). */
const FIRST_PROBE_DELAY_MS = 100;

export interface TargetCounters {
  success: number;
  http_failure: number;
  tcp_failure: number;
  timeout_failure: number;
}

export interface TargetState {
  ip: string;
  port: number;
  hostname?: string;
  hostHeader?: string;
  healthy: boolean;
  counter: TargetCounters;
}

interface Target extends TargetState {
  timer?: TimerHandle;
}

/** The health another worker left in the shared dict for a checker's target, if any. */
export interface SharedHealthView {
  get(checker: string, ip: string, port: number, hostname?: string): boolean | undefined;
}

export interface CheckerEnv {
  clock: Clock;
  transport: Transport;
  log: ErrorLog;
  trace?: Tracer;
  sharedHealth?: SharedHealthView;
}

let checkerSeq = 0;

/** How a target is named on the timeline: `host(ip:port)` or `ip:port`. */
function targetLabel(t: TargetState): string {
  const host = t.hostname ?? t.hostHeader;
  return host ? `${host}(${t.ip}:${t.port})` : `${t.ip}:${t.port}`;
}

function targetKey(ip: string, port: number, hostname?: string): string {
  return `${ip}:${port}:${hostname ?? ip}`;
}

/**
 * An active health checker with lua-resty-healthcheck semantics: one target per node, probed
 * every healthy.interval (or unhealthy.interval while unhealthy); `http_failures` failing statuses
 * (or `tcp_failures` refused connections, `timeouts` timeouts) in a row make a target unhealthy,
 * `successes` good statuses in a row make it healthy again. Every status change bumps status_ver.
 */
export class Checker {
  readonly id = ++checkerSeq;
  dead = false;
  stopped = false;
  status_ver = 0;
  private readonly targets = new Map<string, Target>();
  private readonly active: Required<Pick<ActiveChecks, "type" | "timeout" | "http_path">> & ActiveChecks;

  constructor(
    readonly name: string,
    readonly checks: Checks,
    private readonly env: CheckerEnv,
  ) {
    const a = checks.active ?? {};
    this.active = {
      ...a,
      type: a.type ?? CHECK_DEFAULTS.type,
      timeout: a.timeout ?? CHECK_DEFAULTS.timeout,
      http_path: a.http_path ?? CHECK_DEFAULTS.http_path,
    };
  }

  toString(): string {
    return `checker#${this.id}`;
  }

  addTarget(ip: string, port: number, hostname?: string, healthy = true, hostHeader?: string): boolean {
    const key = targetKey(ip, port, hostname);
    const existing = this.targets.get(key);
    if (existing) return true;
    // A target another worker already added keeps its health (add_target ignores an existing one).
    const shared = this.env.sharedHealth?.get(this.name, ip, port, hostname);
    const t: Target = { ip, port, healthy: shared ?? healthy, counter: { success: 0, http_failure: 0, tcp_failure: 0, timeout_failure: 0 } };
    if (hostname !== undefined) t.hostname = hostname;
    if (hostHeader !== undefined) t.hostHeader = hostHeader;
    this.targets.set(key, t);
    this.schedule(t, FIRST_PROBE_DELAY_MS);
    return true;
  }

  removeTarget(ip: string, port: number, hostname?: string): boolean {
    const key = targetKey(ip, port, hostname);
    const t = this.targets.get(key);
    t?.timer?.cancel();
    return this.targets.delete(key);
  }

  /** set_target_status as it reaches this checker: false when it has no such target. */
  forceHealth(ip: string, port: number, hostname: string | undefined, healthy: boolean): boolean {
    const t = this.targets.get(targetKey(ip, port, hostname));
    if (!t) return false;
    t.counter = { success: 0, http_failure: 0, tcp_failure: 0, timeout_failure: 0 };
    if (t.healthy !== healthy) {
      t.healthy = healthy;
      this.status_ver += 1;
      this.env.trace?.health(String(this), targetLabel(t), healthy);
    }
    return true;
  }

  /** [true] healthy, [false] unhealthy, [undefined, "target not found"] unknown. */
  getTargetStatus(ip: string, port: number, hostname?: string): [boolean | undefined, string?] {
    const t = this.targets.get(targetKey(ip, port, hostname));
    if (!t) return [undefined, "target not found"];
    return [t.healthy];
  }

  /** The targets as they are, not copied (targetList() copies): read them, do not keep them. */
  targetStates(): IterableIterator<Readonly<TargetState>> {
    return this.targets.values();
  }

  targetList(): TargetState[] {
    return [...this.targets.values()].map(({ timer: _timer, ...rest }) => ({ ...rest, counter: { ...rest.counter } }));
  }

  /** Stop probing; the health state stays readable. */
  stop(): void {
    this.stopped = true;
    for (const t of this.targets.values()) t.timer?.cancel();
  }

  private interval(t: Target): number {
    const s = t.healthy ? this.active.healthy?.interval ?? CHECK_DEFAULTS.healthy.interval : this.active.unhealthy?.interval ?? CHECK_DEFAULTS.unhealthy.interval;
    return s * 1000;
  }

  private schedule(t: Target, delayMs: number): void {
    if (this.stopped || delayMs <= 0) return;
    t.timer = this.env.clock.after(delayMs, () => this.probe(t));
  }

  private async probe(t: Target): Promise<void> {
    if (this.stopped || !this.targets.has(targetKey(t.ip, t.port, t.hostname))) return;
    const probeReq = {
      ip: t.ip,
      port: t.port,
      type: this.active.type,
      path: this.active.http_path,
      headers: this.active.req_headers ?? [],
      timeoutMs: this.active.timeout * 1000,
    };
    const hostHeader = this.active.host ?? t.hostHeader;
    let result: ProbeResult;
    try {
      result = await this.env.transport.probe(hostHeader ? { ...probeReq, hostHeader } : probeReq);
    } catch (e) {
      result = { kind: "refused", error: (e as Error).message };
    }
    if (this.stopped) return;
    const ok = this.report(t, result);
    this.env.trace?.probe(String(this), targetLabel(t), result.kind === "status" ? String(result.status) : result.kind, ok);
    this.schedule(t, this.interval(t));
  }

  /** Counts a probe result; true when it counted as a success. */
  private report(t: Target, r: ProbeResult): boolean {
    const healthy = this.active.healthy ?? {};
    const unhealthy = this.active.unhealthy ?? {};
    if (r.kind === "status" && this.active.type === "tcp") {
      this.count(t, "success", healthy.successes ?? CHECK_DEFAULTS.healthy.successes);
      return true;
    }
    if (r.kind === "status") {
      if ((healthy.http_statuses ?? CHECK_DEFAULTS.healthy.http_statuses).includes(r.status)) {
        this.count(t, "success", healthy.successes ?? CHECK_DEFAULTS.healthy.successes);
        return true;
      }
      if ((unhealthy.http_statuses ?? CHECK_DEFAULTS.unhealthy.http_statuses).includes(r.status)) {
        this.count(t, "http_failure", unhealthy.http_failures ?? CHECK_DEFAULTS.unhealthy.http_failures);
      }
      return false;
    }
    if (r.kind === "timeout") this.count(t, "timeout_failure", unhealthy.timeouts ?? CHECK_DEFAULTS.unhealthy.timeouts);
    else this.count(t, "tcp_failure", unhealthy.tcp_failures ?? CHECK_DEFAULTS.unhealthy.tcp_failures);
    return false;
  }

  private count(t: Target, kind: keyof TargetCounters, limit: number): void {
    const c = t.counter;
    if (kind === "success") {
      c.http_failure = c.tcp_failure = c.timeout_failure = 0;
      if (t.healthy) return;
      c.success += 1;
      if (c.success >= limit) this.setHealth(t, true, `healthy SUCCESS increment (${c.success}/${limit})`);
      return;
    }
    c.success = 0;
    if (!t.healthy) return;
    c[kind] += 1;
    const what = kind === "http_failure" ? "HTTP" : kind === "tcp_failure" ? "TCP" : "TIMEOUT";
    if (c[kind] >= limit) this.setHealth(t, false, `unhealthy ${what} increment (${c[kind]}/${limit})`);
  }

  private setHealth(t: Target, healthy: boolean, why: string): void {
    t.healthy = healthy;
    t.counter = { success: 0, http_failure: 0, tcp_failure: 0, timeout_failure: 0 };
    this.status_ver += 1;
    this.env.trace?.health(String(this), targetLabel(t), healthy);
    this.env.log.write(
      "warn",
      { file: "healthcheck.lua", line: 1150, fn: "log" },
      `[healthcheck] (${this.name}) ${why} for '${t.hostname ?? ""}(${t.ip}:${t.port})', target is now ${healthy ? "healthy" : "unhealthy"}`,
    );
  }
}
