import type { ProbeConnection, ProbeRequest, ProbeResult } from "../net/transport.ts";
import type { ActiveChecks, Checks } from "../plugins/ai-proxy-multi/types.ts";
import type { TargetEvent } from "./events.ts";
import { HealthShm, type InternalHealth, type TargetRecord } from "./health-shm.ts";
import type { HealthcheckLibrary } from "./library.ts";

/**
 * lua-resty-healthcheck's own defaults (healthcheck.lua `defaults`), used where APISIX's schema
 * left a value out. A missing `healthy` or `unhealthy` block keeps interval 0: that probe class
 * never runs. (APISIX's schema fills interval 1 etc. inside a block that is present.)
 */
export const LIBRARY_DEFAULTS = {
  type: "http" as const,
  timeout: 1,
  concurrency: 10,
  http_path: "/",
  healthy: { interval: 0, http_statuses: [200, 302], successes: 2 },
  unhealthy: { interval: 0, http_statuses: [429, 404, 500, 501, 502, 503, 504, 505], tcp_failures: 2, timeouts: 3, http_failures: 5 },
  req_headers: [""],
};

/** APISIX's schema defaults inside a `checks.active` block (apisix/schema_def.lua health_checker_active). */
export const CHECK_DEFAULTS = {
  type: "http" as const,
  timeout: 1,
  http_path: "/",
  healthy: { interval: 1, successes: 2, http_statuses: [200, 302] },
  unhealthy: { interval: 1, http_failures: 5, tcp_failures: 2, timeouts: 3, http_statuses: [429, 404, 500, 501, 502, 503, 504, 505] },
};

// The 32-bit multi-counter: four 8-bit counters (CTR_* in healthcheck.lua).
const CTR_SUCCESS = 0x00000001;
const CTR_HTTP = 0x00000100;
const CTR_TCP = 0x00010000;
const CTR_TIMEOUT = 0x01000000;
const MASK_FAILURE = 0xffffff00 | 0;
const MASK_SUCCESS = 0x000000ff;
const COUNTER_NAMES: Record<number, string> = { [CTR_SUCCESS]: "SUCCESS", [CTR_HTTP]: "HTTP", [CTR_TCP]: "TCP", [CTR_TIMEOUT]: "TIMEOUT" };

/** LuaJIT's bit ops take a number to int32 rounding half to even (lj_num2bit). */
function num2bit(x: number): number {
  const r = Math.round(x);
  return (r - x === 0.5 && r % 2 !== 0 ? r - 1 : r) | 0;
}

/** ctr_get: the 8-bit counter at `idx` of a multi-counter (the division is a float one). */
function ctrGet(multictr: number, idx: number): number {
  return num2bit(multictr / idx) & 0xff;
}

interface ProbeClass {
  interval: number;
  http_statuses: Set<number>;
  active: boolean;
  /** ngx.now() of the last run (s). */
  last_run: number;
}

/** checks.active as the library fills it in (fill_in_settings): every field present. */
interface FilledActive {
  type: "http" | "https" | "tcp";
  timeout: number;
  concurrency: number;
  http_path: string;
  req_headers: string[];
  healthy: ProbeClass & { successes: number };
  unhealthy: ProbeClass & { tcp_failures: number; timeouts: number; http_failures: number };
  /** The request's header lines, built (and warned about) at the first HTTP exchange. */
  headers?: string[];
}

function fillActive(a: ActiveChecks | undefined): FilledActive {
  const active = a ?? {};
  const h = { ...LIBRARY_DEFAULTS.healthy, ...active.healthy };
  const u = { ...LIBRARY_DEFAULTS.unhealthy, ...active.unhealthy };
  return {
    type: active.type ?? LIBRARY_DEFAULTS.type,
    timeout: active.timeout ?? LIBRARY_DEFAULTS.timeout,
    concurrency: typeof active.concurrency === "number" ? active.concurrency : LIBRARY_DEFAULTS.concurrency,
    http_path: active.http_path ?? LIBRARY_DEFAULTS.http_path,
    req_headers: active.req_headers ?? LIBRARY_DEFAULTS.req_headers,
    healthy: { interval: h.interval, successes: h.successes, http_statuses: new Set(h.http_statuses), active: false, last_run: 0 },
    unhealthy: {
      interval: u.interval,
      tcp_failures: u.tcp_failures,
      timeouts: u.timeouts,
      http_failures: u.http_failures,
      http_statuses: new Set(u.http_statuses),
      active: false,
      last_run: 0,
    },
  };
}

/** A target as this checker object knows it: its worker-local cache, kept up to date by events. */
interface LocalTarget {
  ip: string;
  port: number;
  hostname: string;
  hostheader?: string;
  internal_health?: InternalHealth;
}

/** A target to probe, as checker_callback lists it. */
interface WorkItem {
  ip: string;
  port: number;
  hostname: string;
  hostheader?: string;
}

/** How a target is shown to the harness: health and counters from the shm (get_target_list). */
export interface TargetView {
  ip: string;
  port: number;
  hostname: string;
  status: InternalHealth | undefined;
  counter: { success: number; http_failure: number; tcp_failure: number; timeout_failure: number };
}

/** What a TLS handshake with a harness backend answers (the lua engine's socket shim says the same). */
const NO_TLS = "the harness has no TLS: use http checks against the mock backends";

const localKey = (ip: string, port: number, hostname: string): string => `${ip}\u0000${port}\u0000${hostname}`;

const isHealthy = (h: InternalHealth | undefined): boolean => h === "healthy" || h === "mostly_healthy";

let checkerSeq = 0;

/**
 * A lua-resty-healthcheck (v3.2.x) checker object in one worker. Health and counters live in
 * the shared dict under the checker's name, so a checker built again for the same resource (in
 * this worker or another) starts from what the old one knew. The object keeps a local copy of
 * each target's health, updated only by events, which arrive in a 0-delay timer: a status
 * change shows in get_target_status (and bumps status_ver) one delivery after the warn line
 * that counted it. Active probes run from the worker's shared active-check timer.
 */
export class Checker {
  readonly id = ++checkerSeq;
  /** Set by APISIX's manager when it releases the checker. */
  dead = false;
  status_ver = 0;
  readonly shm: HealthShm;
  readonly eventSource: string;
  private readonly active: FilledActive;
  private readonly targets = new Map<string, LocalTarget>();
  private readonly onEvent = (event: string, data: TargetEvent): void => this.eventHandler(event, data);

  private constructor(
    readonly name: string,
    readonly checks: Checks,
    readonly lib: HealthcheckLibrary,
  ) {
    this.active = fillActive(checks.active);
    this.shm = new HealthShm(lib.dict, name);
    this.eventSource = `lua-resty-healthcheck [${name}]`;
  }

  /** healthcheck.new: load the shared target list with its states, subscribe, start. */
  static create(name: string, checks: Checks, lib: HealthcheckLibrary): Checker {
    const c = new Checker(name, checks, lib);
    for (const t of c.shm.targetList()) {
      const local: LocalTarget = { ip: t.ip, port: t.port, hostname: t.hostname ?? t.ip };
      if (t.hostheader !== undefined) local.hostheader = t.hostheader;
      const health = c.shm.state(t.ip, t.port, t.hostname);
      if (health !== undefined) local.internal_health = health;
      c.targets.set(localKey(local.ip, local.port, local.hostname), local);
    }
    c.start();
    lib.register(c);
    return c;
  }

  toString(): string {
    return `checker#${this.id}`;
  }

  private start(): void {
    const now = this.lib.nowSeconds();
    // The first active check happens only one interval after the start.
    if (this.active.healthy.interval > 0) {
      this.active.healthy.active = true;
      this.active.healthy.last_run = now;
    }
    if (this.active.unhealthy.interval > 0) {
      this.active.unhealthy.active = true;
      this.active.unhealthy.last_run = now;
    }
    this.lib.events.unregister(this.eventSource, this.onEvent);
    this.lib.events.register(this.eventSource, this.onEvent);
  }

  /** Stop the active checks and the event subscription; the shared state stays. */
  stop(): void {
    this.active.healthy.active = false;
    this.active.unhealthy.active = false;
    this.lib.events.unregister(this.eventSource, this.onEvent);
    this.lib.changed();
  }

  get stopped(): boolean {
    return !this.active.healthy.active && !this.active.unhealthy.active;
  }

  private log(level: "warn" | "error", message: string): void {
    this.lib.log.write(level, { file: "healthcheck.lua", line: this.lib.behaviour.logLine, fn: "log" }, `[healthcheck] (${this.name}) ${message}`, "ngx.timer");
  }

  private raiseEvent(event: string, ip: string, port: number, hostname: string): void {
    this.lib.events.post(this.eventSource, event, { ip, port, hostname });
  }

  // ------------------------------------------------------------------ node management

  /**
   * add_target: a new target goes into the shared list (state `healthy` unless told otherwise)
   * and an event announces it; an existing one is left as it is, unless delayed_clear marked it,
   * which un-marks it and keeps its state.
   */
  addTarget(ip: string, port: number, hostname?: string, isHealthy = true, hostheader?: string): boolean {
    const name = hostname ?? ip;
    let health: InternalHealth = isHealthy ? "healthy" : "unhealthy";
    const list = this.shm.targetList();
    const i = list.findIndex((t) => t.ip === ip && t.port === port && t.hostname === name);
    if (i >= 0 && list[i]!.purge_time === undefined) return true;
    if (i >= 0) health = this.getTargetStatus(ip, port, name)[0] ? "healthy" : "unhealthy";
    this.shm.setState(ip, port, name, health);
    if (i >= 0) {
      const { purge_time: _marked, ...kept } = list[i]!;
      this.shm.setTargetList(list.map((t, j) => (j === i ? kept : t)));
      return true;
    }
    const added: TargetRecord = { ip, port, hostname: name };
    if (hostheader !== undefined) added.hostheader = hostheader;
    this.shm.setTargetList([...list, added]);
    this.raiseEvent(health, ip, port, name);
    return true;
  }

  /** remove_target: out of the shared list, its state and counter cleared, a `remove` event. */
  removeTarget(ip: string, port: number, hostname?: string): boolean {
    const list = this.shm.targetList();
    const i = list.findIndex((t) => t.ip === ip && t.port === port && t.hostname === hostname);
    if (i < 0) return true;
    this.shm.setTargetList(list.filter((_, j) => j !== i));
    this.shm.clearTarget(ip, port, hostname);
    this.raiseEvent("remove", ip, port, list[i]!.hostname);
    return true;
  }

  /**
   * set_target_status: reset the target's counter, set its shared state, raise the event and say
   * so; a target this object does not know only gets a warn.
   */
  setTargetStatus(ip: string, port: number, hostname: string | undefined, isHealthy: boolean): boolean {
    const name = hostname ?? ip;
    if (!this.targets.has(localKey(ip, port, name))) {
      this.log("warn", `trying to set status for a target that is not in the list: ${ip}:${port}`);
      return true;
    }
    const report = isHealthy ? "healthy" : "unhealthy";
    this.shm.setCounter(ip, port, name, 0);
    this.shm.setState(ip, port, name, report);
    this.raiseEvent(report, ip, port, name);
    this.log("warn", `${report} forced for ${name} ${ip}:${port}`);
    return true;
  }

  /** delayed_clear: mark every target for purging `delay` seconds from now (the state stays until then). */
  delayedClear(delay: number): boolean {
    const purge = this.lib.nowSeconds() + delay;
    this.shm.setTargetList(this.shm.targetList().map((t) => ({ ...t, purge_time: purge })));
    this.lib.changed();
    return true;
  }

  /** get_target_status, from this object's local view: [true] healthy, [false] unhealthy, or not found. */
  getTargetStatus(ip: string, port: number, hostname?: string): [boolean | undefined, string?] {
    const t = this.targets.get(localKey(ip, port, hostname ?? ip));
    if (!t) return [undefined, "target not found"];
    return [isHealthy(t.internal_health)];
  }

  /** The local view, as it is (read it, do not keep it). */
  *targetStates(): IterableIterator<{ ip: string; port: number; hostname: string; healthy: boolean }> {
    for (const t of this.targets.values()) yield { ip: t.ip, port: t.port, hostname: t.hostname, healthy: isHealthy(t.internal_health) };
  }

  /** get_target_list: the shared list with each target's state and counters. */
  targetList(): TargetView[] {
    return this.shm.targetList().map((t) => {
      const c = this.shm.counter(t.ip, t.port, t.hostname);
      return {
        ip: t.ip,
        port: t.port,
        hostname: t.hostname,
        status: this.shm.state(t.ip, t.port, t.hostname),
        counter: { success: ctrGet(c, CTR_SUCCESS), http_failure: ctrGet(c, CTR_HTTP), tcp_failure: ctrGet(c, CTR_TCP), timeout_failure: ctrGet(c, CTR_TIMEOUT) },
      };
    });
  }

  /** The probe type (http, https or tcp). */
  get type(): string {
    return this.active.type;
  }

  // ------------------------------------------------------------------ events

  private eventHandler(event: string, data: TargetEvent): void {
    const hostname = data.hostname ?? data.ip;
    const key = localKey(data.ip, data.port, hostname);
    let t = this.targets.get(key);
    if (event === "remove") {
      if (t) this.targets.delete(key);
      else this.log("warn", `event: trying to remove an unknown target '${data.hostname ?? ""}(${data.ip}:${data.port})'`);
      return;
    }
    if (event === "clear") {
      this.targets.clear();
      return;
    }
    if (event !== "healthy" && event !== "unhealthy" && event !== "mostly_healthy" && event !== "mostly_unhealthy") {
      this.log("warn", `event: unknown event received '${event}'`);
      return;
    }
    if (!t) {
      t = { ip: data.ip, port: data.port, hostname };
      this.targets.set(key, t);
    }
    if (isHealthy(t.internal_health) !== isHealthy(event)) this.status_ver += 1;
    t.internal_health = event;
  }

  // ------------------------------------------------------------------ health management

  /**
   * incr_counter: count one result towards `report` (healthy/unhealthy). Nothing is counted while
   * the local view already is that; each step is a warn line; reaching `limit` (or a first step
   * the other way) changes the shared state and raises an event.
   */
  private incrCounter(report: "healthy" | "unhealthy", ip: string, port: number, hostname: string, limit: number, ctrType: number): void {
    if (limit === 0) return;
    const target = this.targets.get(localKey(ip, port, hostname));
    if (!target) {
      this.log("warn", `trying to increment a target that is not in the list: (${hostname}) ${ip}:${port}`);
      return;
    }
    const current = target.internal_health;
    if (report === current) return;
    const multictr = this.shm.incrCounter(ip, port, hostname, ctrType);
    const ctr = ctrGet(multictr, ctrType);
    this.log("warn", `${report} ${COUNTER_NAMES[ctrType]} increment (${ctr}/${limit}) for '${hostname}(${ip}:${port})'`);
    const next = ctrType === CTR_SUCCESS ? multictr & MASK_SUCCESS : multictr & MASK_FAILURE;
    if (next !== multictr) this.shm.setCounter(ip, port, hostname, next);
    let health: InternalHealth | undefined;
    if (ctr >= limit) health = report;
    else if (current === "healthy" && (next & MASK_FAILURE) > 0) health = "mostly_healthy";
    else if (current === "unhealthy" && (next & MASK_SUCCESS) > 0) health = "mostly_unhealthy";
    if (health !== undefined && health !== current) {
      this.shm.setState(ip, port, hostname, health);
      this.raiseEvent(health, ip, port, hostname);
    }
  }

  private reportSuccess(t: WorkItem): void {
    this.incrCounter("healthy", t.ip, t.port, t.hostname, this.active.healthy.successes, CTR_SUCCESS);
  }

  private reportTcpFailure(t: WorkItem): void {
    this.incrCounter("unhealthy", t.ip, t.port, t.hostname, this.active.unhealthy.tcp_failures, CTR_TCP);
  }

  private reportTimeout(t: WorkItem): void {
    this.incrCounter("unhealthy", t.ip, t.port, t.hostname, this.active.unhealthy.timeouts, CTR_TIMEOUT);
  }

  /** A status in neither list counts for nothing; no status at all counts as a failure. */
  private reportHttpStatus(t: WorkItem, status: number): void {
    if (this.active.healthy.http_statuses.has(status)) this.incrCounter("healthy", t.ip, t.port, t.hostname, this.active.healthy.successes, CTR_SUCCESS);
    else if (this.active.unhealthy.http_statuses.has(status) || status === 0) this.incrCounter("unhealthy", t.ip, t.port, t.hostname, this.active.unhealthy.http_failures, CTR_HTTP);
  }

  // ------------------------------------------------------------------ active checks

  /** Whether either probe class still runs (a stopped checker's do not). */
  isActive(): boolean {
    return this.active.healthy.active || this.active.unhealthy.active;
  }

  /** When each running probe class is next due: [last_run, interval] in seconds. */
  dueClasses(): [number, number][] {
    const out: [number, number][] = [];
    for (const c of [this.active.healthy, this.active.unhealthy]) if (c.active) out.push([c.last_run, c.interval]);
    return out;
  }

  /** The active-check timer's tick: run each probe class whose interval has passed. */
  runDue(cur: number): void {
    for (const mode of ["healthy", "unhealthy"] as const) {
      const c = this.active[mode];
      if (c.active && c.last_run + c.interval <= cur) {
        c.last_run = cur;
        this.checkerCallback(mode);
      }
    }
  }

  /** checker_callback: the targets whose local health is in this class, probed in a 0-delay timer. */
  private checkerCallback(mode: "healthy" | "unhealthy"): void {
    const list: WorkItem[] = [];
    for (const t of this.shm.targetList()) {
      const health = this.targets.get(localKey(t.ip, t.port, t.hostname))?.internal_health;
      if (health === undefined || isHealthy(health) !== (mode === "healthy")) continue;
      const item: WorkItem = { ip: t.ip, port: t.port, hostname: t.hostname };
      if (t.hostheader !== undefined) item.hostheader = t.hostheader;
      list.push(item);
    }
    if (list.length > 0) this.lib.clock.after(0, () => this.activeCheckTargets(list));
  }

  /** The targets in `concurrency` work packages, each probed in turn (package i: targets i, i+n, ...). */
  private async activeCheckTargets(list: WorkItem[]): Promise<void> {
    const n = this.active.concurrency;
    const packages: WorkItem[][] = [];
    list.forEach((item, i) => (packages[i % n] ??= []).push(item));
    for (const p of packages) await this.runWorkPackage(p, 0);
  }

  private async runWorkPackage(items: WorkItem[], from: number): Promise<void> {
    for (let i = from; i < items.length; i++) {
      const wait = await this.runSingleCheck(items[i]!);
      if (wait) {
        // The probe's socket waits out its timeout: the rest of this package comes after.
        this.lib.clock.after(wait.ms, async () => {
          wait.after();
          await this.runWorkPackage(items, i + 1);
        });
        return;
      }
    }
  }

  /**
   * sock:connect(): the result, and the connection the request then goes on: one per probe, as
   * run_single_check makes one ngx.socket.tcp, connects it and sends on it (healthcheck.lua:1040-1123@v3.2.1).
   */
  private async connect(req: ProbeRequest): Promise<{ result: ProbeResult; connection?: ProbeConnection }> {
    try {
      return await this.lib.transport.connectProbe(req);
    } catch (e) {
      return { result: { kind: "refused", error: (e as Error).message } };
    }
  }

  private async exchange(connection: ProbeConnection | undefined, req: ProbeRequest): Promise<ProbeResult> {
    if (!connection) return { kind: "refused", error: "not connected" };
    try {
      return await connection.exchange(req);
    } catch (e) {
      return { kind: "refused", error: (e as Error).message };
    }
  }

  /**
   * run_single_check: connect, then (http) send the request and read the status line. A timeout
   * costs `timeout` seconds: the result is reported that much later (the returned continuation).
   */
  private async runSingleCheck(t: WorkItem): Promise<{ ms: number; after: () => void } | undefined> {
    const timeoutMs = this.active.timeout * 1000;
    const trace = (result: string, ok: boolean) => this.lib.trace.probe(this.name, `${t.hostheader ?? t.hostname}(${t.ip}:${t.port})`, result, ok);
    const { result: connected, connection } = await this.connect({ ip: t.ip, port: t.port, type: "tcp", path: "/", headers: [], timeoutMs });
    if (connected.kind !== "status" || this.active.type !== "http") connection?.close();
    if (connected.kind === "timeout") {
      trace("timeout", false);
      return { ms: timeoutMs, after: () => this.reportTimeout(t) };
    }
    if (connected.kind === "refused") {
      trace("refused", false);
      this.reportTcpFailure(t);
      return undefined;
    }
    if (this.active.type === "tcp") {
      trace("connected", true);
      this.reportSuccess(t);
      return undefined;
    }
    if (this.active.type === "https") {
      // The harness's backends speak plain HTTP (the lua engine's sockets have no TLS either): the
      // handshake fails, as it would for APISIX against them (run_single_check, sslhandshake).
      trace("tls", false);
      this.log("error", `failed SSL handshake with '${t.hostname} (${t.ip}:${t.port})', using server name (sni) '${t.hostheader ?? t.hostname}': ${NO_TLS}`);
      this.reportTcpFailure(t);
      return undefined;
    }
    if (!this.active.headers) {
      // The default req_headers is {""}: an array, so every HTTP checker warns once.
      if (this.active.req_headers.length > 0) this.log("warn", "array headers is deprecated");
      this.active.headers = this.active.req_headers.filter((h) => h !== "");
    }
    const answered = await this.exchange(connection, {
      ip: t.ip,
      port: t.port,
      type: this.active.type,
      path: this.active.http_path,
      headers: this.active.headers,
      hostHeader: t.hostheader ?? t.hostname,
      timeoutMs,
    });
    const failed = (err: string) => this.log("error", `failed to receive status line from '${t.hostname} (${t.ip}:${t.port})': ${err}`);
    if (answered.kind === "timeout") {
      trace("timeout", false);
      return {
        ms: timeoutMs,
        after: () => {
          failed("timeout");
          this.reportTimeout(t);
        },
      };
    }
    if (answered.kind === "refused") {
      trace("refused", false);
      failed("connection reset by peer");
      this.reportTcpFailure(t);
      return undefined;
    }
    trace(String(answered.status), answered.status < 400);
    this.reportHttpStatus(t, answered.status);
    return undefined;
  }

  /** The cleanup pass: drop targets whose purge time has come, clear their state, announce it. */
  purgeMarked(cur: number): void {
    const list = this.shm.targetList();
    const removed = list.filter((t) => t.purge_time !== undefined && t.purge_time <= cur);
    if (removed.length === 0) return;
    this.shm.setTargetList(list.filter((t) => !(t.purge_time !== undefined && t.purge_time <= cur)));
    for (const t of removed) {
      this.shm.clearTarget(t.ip, t.port, t.hostname);
      this.raiseEvent("remove", t.ip, t.port, t.hostname);
    }
  }

  /** The earliest purge time among this name's marked targets (s), if any. */
  earliestPurge(): number | undefined {
    let min: number | undefined;
    for (const t of this.shm.targetList()) if (t.purge_time !== undefined && (min === undefined || t.purge_time < min)) min = t.purge_time;
    return min;
  }
}
