import type { CheckerView, PoolsView } from "../gateway/gateway.ts";
import { INSTANCE_HEADER } from "../gateway/plugins/ai-proxy-multi/plugin.ts";
import { TargetUnsupported, type ObservedLogLine, type Target } from "../targets/target.ts";
import { interrupted, RunTimeout, untilAborted } from "./abort.ts";
import type { Expectation, Outcome, RunFailure, RunResult, StepRecord } from "./result.ts";
import { runJsonChecks } from "./json-checks.ts";
import { expectationFor, expectationKey, type Assertion, type BodyChecks, type CountedWindow, type PoolEntry, type ReceivedAssertion, type Scenario, type Step } from "./scenario.ts";
import { identityProblem, isCurrentVersion, linesPerTick, perTickProblem, poolVersionProblem, showNode, targetsProblem } from "./checks.ts";
import type { PluginCallResult } from "../gateway/engine.ts";
import type { ReceivedRequest } from "../backends/pool.ts";

const LEVELS = ["debug", "info", "notice", "warn", "error"];

export interface RunContext {
  version: string;
  engine: string;
  target: Target;
  targetName: string;
  store: string;
  seed: number;
  /** The etcd key prefix the target uses (for resource paths in pools and checkers). */
  prefix: string;
  /**
   * Ends the run early: a RunTimeout reason fails it at the step it was in; any other reason
   * (the command was interrupted) makes run() reject with that reason, as the run has no result.
   */
  signal?: AbortSignal;
}

/** What a mark notes: see ScenarioExecution.marks. */
interface Mark {
  time: number;
  lines: number;
  received?: number;
  checkers?: Record<string, string> | undefined;
}

interface Check {
  held: boolean;
  observed: unknown;
  message?: string;
  expected?: unknown;
}

function excerpt(s: string, n = 300): string {
  return s.length > n ? s.slice(0, n) + "..." : s;
}

function resourcePath(prefix: string, ref: { route: string; instance: number }): string {
  return `${prefix}/routes/${ref.route}#plugins['ai-proxy-multi'].instances[${ref.instance}]`;
}

/** Whether an assertion's `when` covers this run: its expectation, or its version by name. */
function appliesTo(when: Assertion["when"], expected: Expectation, version: string): boolean {
  if (when === undefined) return true;
  if (typeof when === "string") return when === expected;
  return when.versions.includes(version) || when.versions.includes(expectationKey(version));
}

/** What a body lacks of its checks (empty: it has it all). */
function bodyProblems(checks: BodyChecks, body: string): string[] {
  const problems: string[] = [];
  if (checks.bodyContains !== undefined && !body.includes(checks.bodyContains)) problems.push(`body lacks "${checks.bodyContains}"`);
  if (checks.bodyMatches !== undefined && !new RegExp(checks.bodyMatches).test(body)) problems.push(`body does not match /${checks.bodyMatches}/`);
  if (checks.json) {
    let doc: unknown;
    try {
      doc = JSON.parse(body);
    } catch {
      problems.push("body is not JSON");
      return problems;
    }
    problems.push(...runJsonChecks(doc, checks.json));
  }
  return problems;
}

/** How many matching items a window must hold: count, absent, or atLeast/atMost (default at least 1). */
function judgeCount(n: number, c: CountedWindow, none: string): { held: boolean; expected: string } {
  if (c.absent) return { held: n === 0, expected: none };
  if (c.count !== undefined) return { held: n === c.count, expected: `exactly ${c.count}` };
  const lo = c.atLeast ?? (c.atMost === undefined ? 1 : 0);
  return { held: n >= lo && (c.atMost === undefined || n <= c.atMost), expected: c.atMost === undefined ? `at least ${lo}` : `${lo} to ${c.atMost}` };
}

/** Whether a received request passes an assertion's filters. */
function receivedMatches(r: ReceivedRequest, a: ReceivedAssertion): boolean {
  if (a.backend !== undefined && r.backend !== a.backend) return false;
  if (a.kind !== undefined && r.kind !== a.kind) return false;
  if (a.method !== undefined && r.method !== a.method) return false;
  if (a.path !== undefined && r.path !== a.path) return false;
  if (a.query && !Object.entries(a.query).every(([k, v]) => r.query[k] === v)) return false;
  if (a.headers && !Object.entries(a.headers).every(([k, v]) => r.headers[k.toLowerCase()] === v)) return false;
  if (a.body !== undefined && r.body !== a.body) return false;
  if (a.bodyContains !== undefined && !r.body.includes(a.bodyContains)) return false;
  if (a.bodyMatches !== undefined && !new RegExp(a.bodyMatches).test(r.body)) return false;
  return true;
}

function lastSeq(received: ReceivedRequest[]): number {
  return received.reduce((m, r) => Math.max(m, r.seq), 0);
}

/** One received request in a line, for messages. */
function describeReceived(r: ReceivedRequest): string {
  const headers = Object.entries(r.headers).filter(([k]) => k !== "connection" && k !== "content-length").map(([k, v]) => `${k}: ${v}`).join("; ");
  return `${r.kind} ${r.backend} ${r.method} ${r.url} [${headers}]${r.body ? ` body ${excerpt(r.body, 80)}` : ""}`;
}

/** What a step is doing, for a watchdog message. */
function describeStep(step: Step): string {
  const what =
    step.kind === "admin" || step.kind === "request" ? `${step.kind} ${step.method} ${step.path}`
    : step.kind === "wait" ? `wait ${step.ms} ms`
    : step.kind === "etcd" ? `etcd ${step.action}`
    : step.kind === "backend" ? `backend ${step.name}`
    : step.kind === "dns" ? `dns ${step.name}`
    : step.kind === "inject" ? `inject ${step.injection.module}.${step.injection.function}`
    : step.kind === "restore" ? `restore ${step.module}.${step.function}`
    : step.kind === "call" ? `call ${step.call.module}.${step.call.function}`
    : step.kind === "tick" ? `tick ${Math.abs(step.offsetMs)} ms ${step.offsetMs < 0 ? "before" : "after"} manager tick ${step.nth}`
    : step.kind;
  return `${what} (line ${step.line})`;
}

/** Runs one scenario on one target and judges the outcome against the scenario's expectation. */
export class ScenarioExecution {
  /**
   * Per mark: its time, how many log lines, and where assertions need them the last request
   * received before it and the working checkers (resource path -> identity; undefined where the
   * target does not show its pools).
   */
  private readonly marks = new Map<string, Mark>();
  /** A received assertion counts from or to a mark: marks then note the requests received so far. */
  private readonly usesReceived: boolean;
  /** Marks a `keptSince` / `rebuiltSince` names: they note the working checkers. */
  private readonly identityMarks = new Set<string>();
  private readonly startMs: number;
  private readonly expected: Expectation;

  constructor(
    private readonly scenario: Scenario,
    private readonly ctx: RunContext,
  ) {
    this.startMs = ctx.target.now();
    this.expected = expectationFor(scenario, ctx.version);
    this.usesReceived = scenario.steps.some((s) => s.kind === "assert" && (s.assertion.received?.since !== undefined || s.assertion.received?.until !== undefined));
    for (const s of scenario.steps) {
      if (s.kind !== "assert") continue;
      for (const c of s.assertion.checkers ?? []) {
        const mark = c.keptSince ?? c.rebuiltSince;
        if (mark !== undefined) this.identityMarks.add(mark);
      }
    }
  }

  async run(): Promise<RunResult> {
    const wallStart = Date.now();
    const steps: StepRecord[] = [];
    let failure: RunFailure | undefined;
    let bugTotal = 0;
    let bugHeld = 0;
    for (const [index, step] of this.scenario.steps.entries()) {
      const t0 = Date.now();
      const atMs = this.ctx.target.now() - this.startMs;
      let record: StepRecord;
      const signal = this.ctx.signal;
      try {
        signal?.throwIfAborted();
        record = await untilAborted(this.step(index, step, atMs), signal);
      } catch (e) {
        if (interrupted(signal)) throw signal!.reason;
        const message = e instanceof RunTimeout ? `${e.message} while waiting for step ${index}: ${describeStep(step)}` : (e as Error).message;
        record = { index, kind: step.kind, summary: `${step.kind} (line ${step.line})`, atMs, wallMs: 0, ok: false, message };
      }
      record.wallMs = Date.now() - t0;
      steps.push(record);
      if (record.bug) {
        bugTotal += 1;
        if (record.held) bugHeld += 1;
      }
      if (!record.ok) {
        failure = { step: index, kind: step.kind, message: `line ${step.line}: ${record.message ?? "failed"}` };
        if (record.expected !== undefined) failure.expected = record.expected;
        if (record.observed !== undefined) failure.observed = record.observed;
        break;
      }
    }
    const outcome: Outcome = failure ? "error" : bugTotal > 0 && bugHeld === bugTotal ? "reproduces" : "passes";
    const result: RunResult = {
      scenario: { name: this.scenario.name, file: this.scenario.file, tags: this.scenario.tags },
      version: this.ctx.version,
      engine: this.ctx.engine,
      target: this.ctx.targetName,
      store: this.ctx.store,
      seed: this.ctx.seed,
      expected: this.expected,
      outcome,
      met: outcome === this.expected,
      bugAssertions: { held: bugHeld, total: bugTotal },
      steps,
      wallMs: Date.now() - wallStart,
    };
    if (this.scenario.issue) result.scenario.issue = this.scenario.issue;
    if (failure) result.failure = failure;
    const events = await this.ctx.target.timeline?.();
    if (events) result.timeline = { clock: this.ctx.target.kind === "inproc" ? "virtual" : "real", origin: this.startMs, events: events.map((e) => ({ ...e, t: e.t - this.startMs })) };
    return result;
  }

  private async step(index: number, step: Step, atMs: number): Promise<StepRecord> {
    const base = { index, kind: step.kind, atMs, wallMs: 0 };
    const t = this.ctx.target;
    switch (step.kind) {
      case "admin": {
        const res = await t.admin(step.method, step.path, step.body ?? "");
        const summary = `${step.method} ${step.path} -> ${res.status}`;
        const observed = { status: res.status, body: excerpt(res.body) };
        const statusOk = step.expectStatus === undefined ? res.status < 300 : res.status === step.expectStatus;
        const expected = step.expectStatus ?? "2xx";
        if (!statusOk) return { ...base, summary, ok: false, observed, expected, message: `admin ${step.method} ${step.path}: expected status ${expected}, got ${res.status}: ${excerpt(res.body, 200)}` };
        const problems = bodyProblems(step, res.body);
        if (problems.length) return { ...base, summary, ok: false, observed, message: `admin ${step.method} ${step.path}: ${problems.join("; ")}; body: ${excerpt(res.body, 200)}` };
        return { ...base, summary, ok: true, observed };
      }
      case "request": {
        const res = await t.request(step.method, step.path, step.headers, step.body, step.worker);
        const instance = res.headers[INSTANCE_HEADER];
        const summary = `${step.method} ${step.path}${step.worker !== undefined ? ` on worker ${step.worker}` : ""} -> ${res.status}${instance ? ` (${instance})` : ""}`;
        const observed = { status: res.status, instance, body: excerpt(res.body) };
        const problems: string[] = [];
        if (step.expectStatus !== undefined && res.status !== step.expectStatus) problems.push(`status ${res.status}, expected ${step.expectStatus}`);
        problems.push(...bodyProblems(step, res.body));
        if (step.instance !== undefined && instance !== step.instance) problems.push(`answered by ${instance ?? "no instance"}, expected ${step.instance}`);
        return problems.length === 0 ? { ...base, summary, ok: true, observed } : { ...base, summary, ok: false, observed, message: `request ${step.path}: ${problems.join("; ")}` };
      }
      case "wait":
        await t.wait(step.ms, this.ctx.signal);
        return { ...base, summary: `wait ${step.ms} ms`, ok: true };
      case "backend":
        await t.setBackend(step.name, step.mode);
        return { ...base, summary: `backend ${step.name} -> ${step.mode.kind}${step.mode.kind === "status" ? ` ${step.mode.status}` : ""}`, ok: true };
      case "etcd":
        await t.etcd(step.action);
        return { ...base, summary: `etcd ${step.action}`, ok: true };
      case "mark": {
        // Lines logged after the mark, even at the same instant (a step right after it), count as after it.
        const mark: Mark = { time: t.now(), lines: (await t.logLines()).length };
        if (this.usesReceived) mark.received = lastSeq(await t.received());
        if (this.identityMarks.has(step.name)) {
          const pools = await t.pools();
          mark.checkers = pools && Object.fromEntries(Object.entries(pools.working).map(([path, w]) => [path, w.checker]));
        }
        this.marks.set(step.name, mark);
        return { ...base, summary: `mark ${step.name}`, ok: true };
      }
      case "tick":
        return this.tick(base, step);
      case "dns":
        await t.dns(step.name, step.entries);
        return { ...base, summary: `dns ${step.name} -> ${step.entries.join(", ")}`, ok: true };
      case "inject": {
        const i = step.injection;
        await t.inject(i);
        const does = i.raises !== undefined ? `raises "${i.raises}"` : `returns ${JSON.stringify(i.returns)}`;
        return { ...base, summary: `inject ${i.module}.${i.function} ${does}${i.after ? ` after ${i.after} call(s)` : ""}`, ok: true };
      }
      case "restore":
        await t.restore(step.module, step.function);
        return { ...base, summary: `restore ${step.module}.${step.function}`, ok: true };
      case "health": {
        const h = step.setting;
        await t.setHealth(h);
        return { ...base, summary: `health route ${h.route} instance ${h.instance} ${h.node}:${h.port} -> ${h.healthy ? "healthy" : "unhealthy"}`, ok: true };
      }
      case "call":
        return this.call(base, step);
      case "assert":
        return this.assert(base, step.assertion);
    }
  }

  /**
   * Move the clock to just before or after a manager tick. When the next tick falls comes from the
   * engine (Engine.nextTick); past ticks are not waited for again, so `nth: 2` is the tick after next.
   */
  private async tick(base: Omit<StepRecord, "summary" | "ok">, step: Step & { kind: "tick" }): Promise<StepRecord> {
    const t = this.ctx.target;
    const from = t.now();
    for (let i = 1; i < step.nth; i++) await t.wait((await t.nextTick()) - t.now(), this.ctx.signal);
    const tick = await t.nextTick();
    const to = tick + step.offsetMs;
    const where = `${Math.abs(step.offsetMs)} ms ${step.offsetMs < 0 ? "before" : "after"} ${step.nth > 1 ? `manager tick ${step.nth} from here` : "the next manager tick"} (at ${tick - this.startMs} ms)`;
    if (to < t.now()) return { ...base, summary: `tick to ${where}`, ok: false, message: `tick: cannot stop ${where}: the clock is already at ${t.now() - this.startMs} ms` };
    await t.wait(to - t.now(), this.ctx.signal);
    return { ...base, summary: `tick: waited ${t.now() - from} ms, to ${where}`, ok: true };
  }

  /** A direct call: judged like an assertion (its checks, `bug`, `when`), after it ran. */
  private async call(base: Omit<StepRecord, "summary" | "ok">, step: Step & { kind: "call" }): Promise<StepRecord> {
    const c = step.call;
    const summary = `call ${c.module}.${c.function}${c.times > 1 ? ` x${c.times}` : ""}${step.bug ? " (bug)" : ""}${step.note ? `: ${step.note}` : ""}`;
    const results = await this.ctx.target.call(c);
    if (!appliesTo(step.when, this.expected, this.ctx.version)) return { ...base, summary: `${summary} [not judged: only when ${typeof step.when === "string" ? step.when : `on ${step.when!.versions.join(", ")}`}]`, ok: true, observed: results };
    const problems: string[] = [];
    results.forEach((r: PluginCallResult, i) => {
      const which = results.length > 1 ? `call ${i + 1}: ` : "";
      const { raises, error, json } = step.checks;
      if (raises !== undefined) {
        if (r.raised === undefined) problems.push(`${which}raised nothing, expected an error containing "${raises}"`);
        else if (!r.raised.includes(raises)) problems.push(`${which}raised "${r.raised}", expected it to contain "${raises}"`);
      } else if (r.raised !== undefined) problems.push(`${which}raised "${r.raised}"`);
      if (error !== undefined && !(typeof r.error === "string" && r.error.includes(error))) problems.push(`${which}returned error ${JSON.stringify(r.error)}, expected one containing "${error}"`);
      if (json) problems.push(...runJsonChecks(r, json).map((p) => which + p));
    });
    const held = problems.length === 0;
    if (step.bug) return { ...base, summary: `${summary} -> ${held ? "holds" : "does not hold"}`, ok: true, bug: true, held, observed: results };
    return held ? { ...base, summary, ok: true, held, observed: results } : { ...base, summary, ok: false, held, observed: results, message: `call ${c.module}.${c.function}: ${problems.join("; ")}` };
  }

  private async assert(base: Omit<StepRecord, "summary" | "ok">, a: Assertion): Promise<StepRecord> {
    const applies = appliesTo(a.when, this.expected, this.ctx.version);
    const what = [a.log ? "log" : "", a.checkers ? "checkers" : "", a.pools ? "pools" : "", a.received ? "received" : ""].filter(Boolean).join("+");
    const summary = `assert ${what}${a.bug ? " (bug)" : ""}${a.note ? `: ${a.note}` : ""}`;
    if (!applies) return { ...base, summary: `${summary} [skipped: only when ${typeof a.when === "string" ? a.when : `on ${a.when!.versions.join(", ")}`}]`, ok: true };
    const checks: Check[] = [];
    if (a.log) checks.push(await this.checkLog(a.log));
    if (a.received) checks.push(await this.checkReceived(a.received));
    if (a.checkers || a.pools) {
      const [checkers, pools] = await Promise.all([
        this.ctx.target.checkers().catch((e: unknown) => {
          if (e instanceof TargetUnsupported) return e;
          throw e;
        }),
        this.ctx.target.pools(),
      ]);
      if (a.checkers) {
        if (checkers instanceof TargetUnsupported) checks.push({ held: false, observed: checkers.message, message: checkers.message });
        else checks.push(await this.checkCheckers(a.checkers, checkers, pools));
      }
      if (a.pools) checks.push(await this.checkPools(a.pools, pools));
    }
    const held = checks.every((c) => c.held);
    const observed = checks.map((c) => c.observed);
    const failed = checks.find((c) => !c.held);
    if (a.bug) return { ...base, summary: `${summary} -> ${held ? "holds" : "does not hold"}`, ok: true, bug: true, held, observed };
    if (held) return { ...base, summary, ok: true, held, observed };
    const record: StepRecord = { ...base, summary, ok: false, held, observed, message: failed?.message ?? "assertion failed" };
    if (failed?.expected !== undefined) record.expected = failed.expected;
    return record;
  }

  /** A window's marks and times: from `since` (or the start) to `until`, `within` or now. */
  private window(w: CountedWindow): { start: Mark | undefined; end: Mark | undefined; from: number; to: number } {
    const start = w.since ? this.marks.get(w.since)! : undefined;
    const end = w.until ? this.marks.get(w.until)! : undefined;
    const from = start?.time ?? this.startMs;
    return { start, end, from, to: end?.time ?? (w.within !== undefined ? from + w.within : Infinity) };
  }

  private async checkLog(l: NonNullable<Assertion["log"]>): Promise<Check> {
    const { start, end, from, to } = this.window(l);
    const minRank = l.level ? LEVELS.indexOf(l.level) : 0;
    const re = l.matches ? new RegExp(l.matches) : undefined;
    const lines: ObservedLogLine[] = (await this.ctx.target.logLines()).filter(
      (x, i) =>
        (start ? i >= start.lines : x.time >= from) &&
        (end ? i < end.lines : x.time <= to) &&
        LEVELS.indexOf(String(x.level)) >= minRank &&
        (l.contains === undefined || x.text.includes(l.contains)) &&
        (re === undefined || re.test(x.text)),
    );
    const n = lines.length;
    const pattern = l.contains !== undefined ? `"${l.contains}"` : `/${l.matches}/`;
    const window = this.windowText(l);
    if (l.perTick !== undefined) return this.checkPerTick(l.perTick, lines, from, Math.min(to, this.ctx.target.now()), `log ${pattern} ${window}`);
    const { held, expected } = judgeCount(n, l, "no line");
    const observed = { matching: n, first: lines[0]?.text, last: n > 1 ? lines[n - 1]!.text : undefined };
    return { held, observed, expected, message: `log ${pattern} ${window}: ${n} matching line(s), expected ${expected}${lines[0] ? `; first: ${lines[0].text}` : ""}` };
  }

  /**
   * Every manager tick in (from, to] has exactly `n` of the lines. The ticks are those the run's
   * timeline recorded (its tick lane: both engines report each run of their manager timers), not
   * a 1 s cadence assumed from the start; a tick at the window's start ran before its mark.
   */
  private async checkPerTick(n: number, lines: ObservedLogLine[], from: number, to: number, what: string): Promise<Check> {
    const events = await this.ctx.target.timeline?.();
    if (!events) {
      const message = `${what}: per-tick counts are not observable on this target: they need the run's timeline of manager ticks (the in-process target)`;
      return { held: false, observed: message, message };
    }
    const ticks = [...new Set(events.filter((e) => e.lane === "tick" && e.t > from && e.t <= to).map((e) => e.t))].sort((a, b) => a - b);
    const counts = linesPerTick(ticks, lines.map((l) => l.time));
    const problem = perTickProblem(counts, n, this.startMs);
    const expected = `exactly ${n} in every tick`;
    const observed = { ticks: counts.map((c) => ({ atMs: c.at - this.startMs, lines: c.lines })) };
    if (!problem) return { held: true, observed, expected, message: `${what}: ${n} matching line(s) in each of ${counts.length} tick(s)` };
    return { held: false, observed, expected, message: `${what}: ${problem}${lines[0] ? `; first: ${lines[0].text}` : ""}` };
  }

  private windowText(w: CountedWindow): string {
    return `${w.since ? `after mark ${w.since}` : "since the start"}${w.until ? ` until mark ${w.until}` : ""}${w.within !== undefined ? ` within ${w.within} ms` : ""}`;
  }

  private async checkReceived(a: ReceivedAssertion): Promise<Check> {
    // As for log lines: what arrived after the mark, even at the same instant, is after it.
    const { start, end, from, to } = this.window(a);
    const all = (await this.ctx.target.received()).filter((r) => (start ? r.seq > start.received! : r.time >= from) && (end ? r.seq <= end.received! : r.time <= to));
    const matching = all.filter((r) => receivedMatches(r, a));
    const n = matching.length;
    const { held, expected } = judgeCount(n, a, "no request");
    const filters = ["backend", "kind", "method", "path", "query", "headers", "body", "bodyContains", "bodyMatches"]
      .filter((k) => a[k as keyof ReceivedAssertion] !== undefined)
      .map((k) => `${k} ${JSON.stringify(a[k as keyof ReceivedAssertion])}`)
      .join(", ");
    const sample = (matching[0] ?? all[all.length - 1]);
    const observed = { matching: n, of: all.length, first: matching[0] && describeReceived(matching[0]), last: n > 1 ? describeReceived(matching[n - 1]!) : undefined };
    const seen = sample ? `; ${matching[0] ? "first match" : "last received"}: ${describeReceived(sample)}` : "";
    return { held, observed, expected, message: `received (${filters || "any"}) ${this.windowText(a)}: ${n} of ${all.length} request(s), expected ${expected}${seen}` };
  }

  private async routeVersion(route: string): Promise<string | undefined> {
    const res = await this.ctx.target.admin("GET", `/apisix/admin/routes/${route}`);
    if (res.status === 404) return undefined;
    // Anything else (a 503 from a store that stopped answering) is not "the route is gone".
    if (res.status !== 200) throw new Error(`GET /apisix/admin/routes/${route}: ${res.status} ${res.body.slice(0, 200)}`);
    return String((JSON.parse(res.body) as { modifiedIndex: number }).modifiedIndex);
  }

  private async checkCheckers(wanted: NonNullable<Assertion["checkers"]>, checkers: CheckerView[], pools: PoolsView | undefined): Promise<Check> {
    const problems: string[] = [];
    const observed: Record<string, unknown> = {};
    for (const w of wanted) {
      const path = resourcePath(this.ctx.prefix, w);
      const c = checkers.find((x) => x.name === path || x.name.endsWith(`/routes/${w.route}#plugins['ai-proxy-multi'].instances[${w.instance}]`));
      const label = `route ${w.route} instance ${w.instance}`;
      const healthy = c?.nodes.filter((n) => n.status === "healthy").length ?? 0;
      const unhealthy = c ? c.nodes.length - healthy : 0;
      const identity = c && pools?.working[c.name]?.checker;
      observed[label] = c ? { healthy, unhealthy, version: pools?.working[c.name]?.version, checker: identity, targets: c.nodes.map(showNode) } : "no checker";
      const exists = w.exists ?? true;
      if (!!c !== exists) {
        problems.push(`${label}: ${c ? "has" : "has no"} working checker, expected ${exists ? "one" : "none"}`);
        continue;
      }
      if (!c) continue;
      if (w.healthy !== undefined && healthy !== w.healthy) problems.push(`${label}: ${healthy} healthy node(s), expected ${w.healthy}`);
      if (w.unhealthy !== undefined && unhealthy !== w.unhealthy) problems.push(`${label}: ${unhealthy} unhealthy node(s), expected ${w.unhealthy}`);
      if (w.current !== undefined) {
        const version = pools?.working[c.name]?.version;
        if (version === undefined) problems.push(`${label}: checker version is not observable on this target`);
        else {
          const routeVer = await this.routeVersion(w.route);
          const isCurrent = isCurrentVersion(version, routeVer);
          if (isCurrent !== w.current) problems.push(`${label}: checker version ${version} is ${isCurrent ? "" : "not "}the route's current version ${routeVer ?? "(route gone)"}`);
        }
      }
      const since = w.keptSince ?? w.rebuiltSince;
      if (since !== undefined) {
        const then = this.marks.get(since)!.checkers;
        const problem = then === undefined || identity === undefined ? "checker identity is not observable on this target" : identityProblem(w.keptSince !== undefined ? "kept" : "rebuilt", since, then[c.name], identity);
        if (problem) problems.push(`${label}: ${problem}`);
      }
      if (w.targets) {
        const resolved = await Promise.all(w.targets.map(async (x) => ({ ...x, ip: await this.ctx.target.addressOf(x.node) })));
        const problem = targetsProblem(resolved, c.nodes);
        if (problem) problems.push(`${label}: ${problem}, expected exactly [${w.targets.map((x) => x.text).join(", ")}]`);
      }
    }
    return { held: problems.length === 0, observed, message: problems.join("; ") };
  }

  private async checkPools(wanted: NonNullable<Assertion["pools"]>, pools: PoolsView | undefined): Promise<Check> {
    if (!pools) return { held: false, observed: "pools are not observable on this target", message: "pools are not observable on this target" };
    const problems: string[] = [];
    const routeVersions = new Map<string, string | undefined>();
    const compare = async (name: "waiting" | "working", refs: PoolEntry[] | undefined): Promise<void> => {
      if (!refs) return;
      const want = refs.map((r) => resourcePath(this.ctx.prefix, r)).sort();
      const have = Object.keys(pools[name]).sort();
      if (JSON.stringify(want) !== JSON.stringify(have)) problems.push(`${name} pool is [${have.join(", ")}], expected [${want.join(", ")}]`);
      for (const r of refs) {
        const path = resourcePath(this.ctx.prefix, r);
        const version = name === "waiting" ? pools.waiting[path] : pools.working[path]?.version;
        if (!r.version || version === undefined) continue;
        if (r.version.kind !== "exactly" && !routeVersions.has(r.route)) routeVersions.set(r.route, await this.routeVersion(r.route));
        const problem = poolVersionProblem(r.version, version, routeVersions.get(r.route));
        if (problem) problems.push(`${name} pool: route ${r.route} instance ${r.instance} ${problem}`);
      }
    };
    await compare("waiting", wanted.waiting);
    await compare("working", wanted.working);
    return { held: problems.length === 0, observed: pools, message: problems.join("; ") };
  }
}
