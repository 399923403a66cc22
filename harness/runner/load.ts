import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { ErrorObject } from "ajv";
import { isMap, LineCounter, parseDocument, type Document, type Node } from "yaml";
import type { BackendMode } from "../backends/backend.ts";
import type { EtcdAction } from "../gateway/gateway.ts";
import { PROFILES } from "../gateway/versions/index.ts";
import { parseDuration } from "./duration.ts";
import { MAX_DURATION_MS, STEP_KINDS } from "./scenario-schema.ts";
import type { Assertion, BodyChecks, CallChecks, CheckerAssertion, CheckerTarget, JsonCheck, PoolEntry, PoolVersion, ReceivedAssertion, Scenario, Step } from "./scenario.ts";
import { jsonCheckProblem } from "./json-checks.ts";
import { CONSTRUCT_UPSTREAM, type Injection, type PluginCall } from "../gateway/engine.ts";
import { isIPv4, isIPv6, isLoopback } from "../gateway/resolver/resolver.ts";
import type { LogLevel } from "../gateway/log/error-log.ts";
import { scenarioValidators } from "./validators.ts";
import { ScenarioError } from "./scenario-files.ts";

export { findScenarioFiles, ScenarioError } from "./scenario-files.ts";

export const FIXTURES_DIR = fileURLToPath(new URL("../../fixtures/", import.meta.url));

let providerHostNames: string[] | undefined;

/** The provider hosts every run resolves (fixtures/hosts.json), read on first use. */
function providerHosts(): string[] {
  providerHostNames ??= Object.keys(JSON.parse(readFileSync(join(FIXTURES_DIR, "hosts.json"), "utf8")) as object);
  return providerHostNames;
}

type PathKey = string | number;

function describeError(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "additionalProperties":
      return `unknown field "${String(p.additionalProperty)}"`;
    case "required":
      return `missing field "${String(p.missingProperty)}"`;
    case "enum":
      return `expected one of ${(p.allowedValues as unknown[]).join(", ")}`;
    case "type":
      return `expected ${String(p.type)}`;
    case "pattern":
      return `expected a value matching ${String(p.pattern)}`;
    case "anyOf":
      return "value has the wrong shape (see the README's scenario format)";
    default:
      return e.message ?? "invalid";
  }
}

export { parseDuration };

/** A duration the schema let through, refused when longer than MAX_DURATION_MS. */
function durationAt(src: Source, path: PathKey[], v: number | string): number {
  const ms = parseDuration(v);
  if (ms > MAX_DURATION_MS) throw src.error(path, `${typeof v === "string" ? v : `${v} ms`} is too long: a scenario's durations are at most 1h (${MAX_DURATION_MS} ms)`);
  return ms;
}

function parseMode(src: Source, path: PathKey[], v: unknown): BackendMode {
  if (v === undefined || v === "healthy") return { kind: "healthy" };
  if (v === "down") return { kind: "down" };
  const o = v as { status?: number; slow?: number | string };
  if (o.status !== undefined) return { kind: "status", status: o.status };
  return { kind: "slow", delayMs: durationAt(src, [...path, "slow"], o.slow!) };
}

/** Read a file the scenario names; an unreadable one is the scenario's mistake, at that spot. */
function readAt(src: Source, path: PathKey[], file: string, what: string): string {
  try {
    src.reads.push(resolve(file));
    return readFileSync(file, "utf8");
  } catch (e) {
    throw src.error(path, `cannot read ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** `child` is `dir` or inside it (after resolving symlinks, so a link cannot lead out). */
function inside(dir: string, child: string): boolean {
  const rel = relative(dir, child);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

function pathOf(e: ErrorObject): PathKey[] {
  return e.instancePath.split("/").slice(1).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

class Source {
  readonly lines = new LineCounter();
  readonly doc: Document;
  /** Every other file the scenario's content came from (fixtures it names), as absolute paths. */
  readonly reads: string[] = [];

  constructor(
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
  }

  /** Position of the node at a path (or of its nearest existing parent). */
  at(path: PathKey[], useKey = false): { line: number; col: number } {
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      if (useKey && n === path.length && n > 0) {
        const parent = sub.length > 1 ? this.doc.getIn(sub.slice(0, -1), true) : this.doc.contents;
        if (isMap(parent)) {
          const pair = parent.items.find((it) => (it.key as { value?: unknown } | null)?.value === sub[sub.length - 1]);
          const range = (pair?.key as Node | undefined)?.range;
          if (range) return this.lines.linePos(range[0]);
        }
      }
      const node = (sub.length === 0 ? this.doc.contents : this.doc.getIn(sub, true)) as Node | undefined;
      if (node?.range) return this.lines.linePos(node.range[0]);
    }
    return { line: 1, col: 1 };
  }

  error(path: PathKey[], detail: string, useKey = false): ScenarioError {
    const { line, col } = this.at(path, useKey);
    const where = path.length ? `${path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("")}: ` : "";
    return new ScenarioError(this.file, line, col, `${where}${detail}`);
  }

  /** The most useful of ajv's errors: a described anyOf beats the first branch's complaint. */
  ajvErrors(base: PathKey[], errors: ErrorObject[]): ScenarioError {
    const first = errors[0]!;
    const described = errors.find((e) => e.keyword === "anyOf" && e.instancePath === first.instancePath && typeof (e.parentSchema as { description?: unknown } | undefined)?.description === "string");
    if (described) return this.error([...base, ...pathOf(described)], `expected ${(described.parentSchema as { description: string }).description}`);
    return this.ajvError(base, first);
  }

  ajvError(base: PathKey[], e: ErrorObject): ScenarioError {
    const path = [...base, ...pathOf(e)];
    if (e.keyword === "additionalProperties") {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      return this.error([...path, key], describeError(e), true);
    }
    return this.error(path, describeError(e));
  }
}

/**
 * A step's body: inline, or read from a fixture. Fixtures are confined: a plain path is under
 * fixtures/, a `./` path under the scenario's own folder; nothing outside those is ever read.
 */
function bodyText(src: Source, path: PathKey[], body: unknown, fixture: string | undefined, scenarioDir: string): string | undefined {
  if (fixture !== undefined && body !== undefined) throw src.error([...path, "fixture"], "give body or fixture, not both");
  if (fixture !== undefined) {
    const local = fixture.startsWith("./") || fixture.startsWith("../");
    const base = local ? scenarioDir : FIXTURES_DIR;
    const file = resolve(base, fixture);
    const where = local ? "the scenario's folder" : "fixtures/";
    if (isAbsolute(fixture) || !inside(resolve(base), file)) throw src.error([...path, "fixture"], `fixture ${fixture} is outside ${where}; fixtures are read only from fixtures/ or (with ./) the scenario's folder`);
    if (!existsSync(file)) throw src.error([...path, "fixture"], `fixture not found: ${fixture} (looked at ${relative(process.cwd(), file)})`);
    if (!inside(realpathSync(base), realpathSync(file))) throw src.error([...path, "fixture"], `fixture ${fixture} links outside ${where}`);
    return readAt(src, [...path, "fixture"], file, `fixture ${fixture}`);
  }
  if (body === undefined) return undefined;
  return typeof body === "string" ? body : JSON.stringify(body);
}

function checkRegex(src: Source, path: PathKey[], pattern: unknown): void {
  if (typeof pattern !== "string") return;
  try {
    new RegExp(pattern);
  } catch (e) {
    throw src.error(path, `bad regular expression: ${(e as Error).message}`);
  }
}

function jsonChecks(src: Source, path: PathKey[], v: unknown): JsonCheck[] | undefined {
  if (v === undefined) return undefined;
  const checks = v as JsonCheck[];
  checks.forEach((c, i) => {
    const problem = jsonCheckProblem(c);
    if (problem) throw src.error([...path, i], problem);
  });
  return checks;
}

/** bodyContains, bodyMatches and json of an admin or request step. */
function bodyChecks(src: Source, path: PathKey[], v: Record<string, unknown>): BodyChecks {
  const out: BodyChecks = {};
  if (v.bodyContains !== undefined) out.bodyContains = v.bodyContains as string;
  if (v.bodyMatches !== undefined) {
    checkRegex(src, [...path, "bodyMatches"], v.bodyMatches);
    out.bodyMatches = v.bodyMatches as string;
  }
  const json = jsonChecks(src, [...path, "json"], v.json);
  if (json) out.json = json;
  return out;
}

/** An IP literal off loopback can never be reached; anything else is checked against the scenario's names later. */
function loopbackOrName(src: Source, path: PathKey[], entry: string): void {
  if ((isIPv4(entry) || isIPv6(entry)) && !isLoopback(entry)) throw src.error(path, `${entry} is not a loopback address (127.0.0.0/8 or ::1): the harness sends nothing off this machine`);
}

function injectStep(src: Source, path: PathKey[], line: number, v: Record<string, unknown>): Step {
  const module = (v.module as string | undefined) ?? CONSTRUCT_UPSTREAM.module;
  const fn = v.function as string;
  if (v.restore === true) {
    const extra = ["raises", "returns", "after"].find((k) => v[k] !== undefined);
    if (extra) throw src.error([...path, extra], `a restore takes only module and function, not "${extra}"`, true);
    return { kind: "restore", line, module, function: fn };
  }
  if ((v.raises === undefined) === (v.returns === undefined)) throw src.error(path, 'an inject step needs "raises" or "returns" (one of them), or "restore: true"');
  const injection: Injection = { module, function: fn };
  if (v.raises !== undefined) injection.raises = v.raises as string;
  if (v.returns !== undefined) {
    const returns = v.returns as unknown[];
    // The first value is what the caller indexes (an upstream): a table or nil.
    if (returns.length > 0 && returns[0] !== null && (typeof returns[0] !== "object" || Array.isArray(returns[0]))) throw src.error([...path, "returns", 0], "the first value returned must be a table or null (nil)");
    injection.returns = returns;
  }
  if (v.after !== undefined) injection.after = v.after as number;
  return { kind: "inject", line, injection };
}

function callStep(src: Source, path: PathKey[], line: number, v: Record<string, unknown>, scenarioDir: string): Step {
  const call: PluginCall = { module: (v.module as string | undefined) ?? CONSTRUCT_UPSTREAM.module, function: v.function as string, times: (v.times as number | undefined) ?? 1 };
  const argText = bodyText(src, path, v.arg, v.fixture as string | undefined, scenarioDir);
  if (argText !== undefined) {
    try {
      call.arg = JSON.parse(argText) as unknown;
    } catch (e) {
      throw src.error([...path, "fixture"], `the fixture is not JSON: ${(e as Error).message}`);
    }
  }
  if (v.raises !== undefined && v.error !== undefined) throw src.error([...path, "error"], 'a call raises or returns an error, not both: give "raises" or "error"', true);
  const checks: CallChecks = {};
  if (v.raises !== undefined) checks.raises = v.raises as string;
  if (v.error !== undefined) checks.error = v.error as string;
  const json = jsonChecks(src, [...path, "json"], v.json);
  if (json) checks.json = json;
  const step: Step = { kind: "call", line, call, checks, bug: v.bug === true };
  if (v.when !== undefined) step.when = v.when as Assertion["when"];
  if (v.note !== undefined) step.note = v.note as string;
  return step;
}

/** Marks set so far: name -> the step that (last) set it. */
type Marks = Map<string, number>;

function markAt(src: Source, path: PathKey[], name: unknown, marks: Marks): void {
  if (typeof name === "string" && !marks.has(name)) throw src.error(path, `no earlier mark named "${name}"`);
}

/** A counted window's since/until (earlier marks, in that order) and within (a duration), in place. */
function windowFields(src: Source, path: PathKey[], w: Record<string, unknown>, marks: Marks): void {
  markAt(src, [...path, "since"], w.since, marks);
  markAt(src, [...path, "until"], w.until, marks);
  if (typeof w.since === "string" && typeof w.until === "string" && marks.get(w.until)! <= marks.get(w.since)!) {
    throw src.error([...path, "until"], `mark "${w.until}" is not after mark "${w.since}": the window would be empty`);
  }
  if (w.until !== undefined && w.within !== undefined) throw src.error([...path, "within"], 'give "until" or "within" for the window\'s end, not both', true);
  if (w.within !== undefined) w.within = durationAt(src, [...path, "within"], w.within as number | string);
}

function receivedAssertion(src: Source, path: PathKey[], v: Record<string, unknown>, marks: Marks): ReceivedAssertion {
  const r = { ...v };
  checkRegex(src, [...path, "bodyMatches"], r.bodyMatches);
  windowFields(src, path, r, marks);
  return r as ReceivedAssertion;
}

function logAssertion(src: Source, path: PathKey[], v: Record<string, unknown>, marks: Marks): NonNullable<Assertion["log"]> {
  const log = { ...v };
  if (log.contains === undefined && log.matches === undefined) throw src.error(path, 'a log assertion needs "contains" or "matches"');
  checkRegex(src, [...path, "matches"], log.matches);
  windowFields(src, path, log, marks);
  const counted = ["count", "atLeast", "atMost", "absent"].find((k) => log[k] !== undefined);
  if (log.perTick !== undefined && counted) throw src.error([...path, counted], `"perTick" already says how many lines each tick has: give it without "${counted}"`, true);
  return log as NonNullable<Assertion["log"]>;
}

/**
 * `node:port` or `hostname(node:port)`: what a checker probes. The node is an address (`[v6]` in
 * brackets) or a name checked against the scenario's names once all steps are read.
 */
function checkerTarget(src: Source, path: PathKey[], text: string): CheckerTarget {
  const named = /^([^()\s]+)\(([^()\s]+)\)$/.exec(text);
  const addr = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s()[\]]+)):(\d{1,5})$/.exec(named ? named[2]! : text);
  if (!addr) throw src.error(path, `expected "node:port" or "hostname(node:port)", e.g. "127.0.0.11:80", "a:80" (a backend) or "a.test(127.0.0.11:80)"; got "${text}"`);
  const node = addr[1] ?? addr[2]!;
  const port = Number(addr[3]);
  loopbackOrName(src, path, node);
  if (port < 1 || port > 65535) throw src.error(path, `port ${port} is out of range (1-65535)`);
  const t: CheckerTarget = { node, port, text };
  if (named) t.hostname = named[1]!;
  return t;
}

function checkerAssertion(src: Source, path: PathKey[], c: Record<string, unknown>, marks: Marks): CheckerAssertion {
  const a = { ...c, route: String(c.route) } as CheckerAssertion & { targets?: unknown };
  markAt(src, [...path, "keptSince"], c.keptSince, marks);
  markAt(src, [...path, "rebuiltSince"], c.rebuiltSince, marks);
  if (c.keptSince !== undefined && c.rebuiltSince !== undefined) throw src.error([...path, "rebuiltSince"], 'a checker is kept or rebuilt since a mark: give "keptSince" or "rebuiltSince", not both', true);
  const about = ["keptSince", "rebuiltSince", "targets"].find((k) => c[k] !== undefined);
  if (c.exists === false && about) throw src.error([...path, about], `"exists: false" says there is no checker: "${about}" asks about one`, true);
  if (c.targets !== undefined) a.targets = (c.targets as string[]).map((t, i) => checkerTarget(src, [...path, "targets", i], t));
  return a;
}

function poolEntries(entries: Record<string, unknown>[]): PoolEntry[] {
  return entries.map((r) => {
    const e: PoolEntry = { route: String(r.route), instance: r.instance as number };
    const v = r.version;
    if (v !== undefined) e.version = v === "current" || v === "stale" ? ({ kind: v } as PoolVersion) : { kind: "exactly", version: String(v) };
    return e;
  });
}

/** A tick step: `before` or `after` (ms, under the 1 s tick period) the `nth` next tick. */
function tickStep(src: Source, path: PathKey[], line: number, v: Record<string, unknown>): Step {
  if ((v.before === undefined) === (v.after === undefined)) throw src.error(path, 'a tick step needs "before" or "after" (one of them): how far from the manager tick to stop');
  const which = v.before !== undefined ? "before" : "after";
  const ms = durationAt(src, [...path, which], v[which] as number | string);
  if (ms >= 1000) throw src.error([...path, which], `expected less than the manager's 1 s tick period, got ${ms} ms`);
  if (which === "before" && ms === 0) throw src.error([...path, which], '0 ms before a tick is the tick itself: write "after: 0" (the tick has run) or "before: 1ms" (it has not)');
  return { kind: "tick", line, nth: (v.nth as number | undefined) ?? 1, offsetMs: which === "before" ? -ms : ms };
}

function toStep(src: Source, index: number, raw: Record<string, unknown>, scenarioDir: string, marks: Marks): Step {
  const kind = Object.keys(raw)[0]!;
  const path: PathKey[] = ["steps", index];
  if (!STEP_KINDS.includes(kind)) throw src.error([...path, kind], `unknown step "${kind}" (expected one of ${STEP_KINDS.join(", ")})`, true);
  const value = raw[kind];
  const validate = scenarioValidators()[`step:${kind}`]!;
  if (!validate(value)) throw src.ajvErrors([...path, kind], validate.errors!);
  const line = src.at([...path, kind], true).line;
  const v = value as Record<string, unknown>;
  switch (kind) {
    case "admin": {
      const step: Step = { kind: "admin", line, method: v.method as string, path: v.path as string, ...bodyChecks(src, [...path, kind], v) };
      const body = bodyText(src, [...path, kind], v.body, v.fixture as string | undefined, scenarioDir);
      if (body !== undefined) step.body = body;
      if (v.status !== undefined) step.expectStatus = v.status as number;
      return step;
    }
    case "request": {
      const step: Step = {
        kind: "request",
        line,
        method: (v.method as string | undefined) ?? "POST",
        path: v.path as string,
        headers: { "content-type": "application/json", ...((v.headers as Record<string, string>) ?? {}) },
        body: bodyText(src, [...path, kind], v.body, v.fixture as string | undefined, scenarioDir) ?? "",
        ...bodyChecks(src, [...path, kind], v),
      };
      if (v.status !== undefined) step.expectStatus = v.status as number;
      if (v.instance !== undefined) step.instance = v.instance as string;
      if (v.worker !== undefined) step.worker = v.worker as number;
      return step;
    }
    case "wait":
      return { kind: "wait", line, ms: durationAt(src, [...path, kind], value as number | string) };
    case "backend":
      return { kind: "backend", line, name: v.name as string, mode: parseMode(src, [...path, kind, "mode"], v.mode) };
    case "etcd":
      return { kind: "etcd", line, action: value as EtcdAction };
    case "mark":
      marks.set(value as string, index);
      return { kind: "mark", line, name: value as string };
    case "tick":
      return tickStep(src, [...path, kind], line, v);
    case "dns": {
      const entries = v.addresses as string[];
      entries.forEach((e, i) => loopbackOrName(src, [...path, kind, "addresses", i], e));
      return { kind: "dns", line, name: (v.name as string).toLowerCase(), entries };
    }
    case "inject":
      return injectStep(src, [...path, kind], line, v);
    case "health": {
      const node = v.node as string;
      const at = node.lastIndexOf(":");
      const host = node.slice(0, at);
      const port = Number(node.slice(at + 1));
      if (port < 1 || port > 65535) throw src.error([...path, kind, "node"], `port ${port} is out of range (1-65535)`);
      loopbackOrName(src, [...path, kind, "node"], host);
      const setting: Step & { kind: "health" } = { kind: "health", line, setting: { route: String(v.route), instance: v.instance as number, node: host, port, healthy: v.healthy as boolean } };
      if (v.hostname !== undefined) setting.setting.hostname = v.hostname as string;
      return setting;
    }
    case "call":
      return callStep(src, [...path, kind], line, v, scenarioDir);
    default: {
      const a: Assertion = { bug: v.bug === true };
      if (v.when !== undefined) a.when = v.when as Assertion["when"];
      if (v.note !== undefined) a.note = v.note as string;
      if (v.log !== undefined) a.log = logAssertion(src, [...path, kind, "log"], v.log as Record<string, unknown>, marks);
      if (v.checkers !== undefined) a.checkers = (v.checkers as Record<string, unknown>[]).map((c, i) => checkerAssertion(src, [...path, kind, "checkers", i], c, marks));
      if (v.received !== undefined) a.received = receivedAssertion(src, [...path, kind, "received"], v.received as Record<string, unknown>, marks);
      if (v.pools !== undefined) {
        const p = v.pools as Record<string, Record<string, unknown>[]>;
        a.pools = {};
        if (p.waiting) a.pools.waiting = poolEntries(p.waiting);
        if (p.working) a.pools.working = poolEntries(p.working);
      }
      return { kind: "assert", line, assertion: a };
    }
  }
}

/** Read and check one scenario file. Throws ScenarioError for any mistake in it. */
export function loadScenario(file: string): Scenario {
  return loadScenarioAndInputs(file).scenario;
}

/**
 * loadScenario, plus every file the result was made from (absolute paths: the scenario file,
 * the fixtures it names, fixtures/hosts.json): the same files with the same contents load the same.
 */
export function loadScenarioAndInputs(file: string): { scenario: Scenario; inputs: string[] } {
  const display = relative(process.cwd(), file) || file;
  if (!existsSync(file)) throw new ScenarioError(display, 1, 1, "file not found");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ScenarioError(display, 1, 1, `cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const src = new Source(display, text);
  const yamlError = src.doc.errors[0];
  if (yamlError) {
    const { line, col } = src.lines.linePos(yamlError.pos[0]);
    throw new ScenarioError(display, line, col, `malformed YAML: ${yamlError.message.split("\n")[0]}`);
  }
  const raw = src.doc.toJS() as Record<string, unknown> | null;
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new ScenarioError(display, 1, 1, "expected a mapping with name, steps and expect");
  const validateScenario = scenarioValidators().scenario;
  if (!validateScenario(raw)) throw src.ajvErrors([], validateScenario.errors!);
  // A key is a profile or release, a git ref of the lua engine (HEAD, worktree), or one of
  // those with patches: 3.16.0+13322.diff.
  const known = new Set([...PROFILES.map((p) => p.name), "HEAD", "worktree"]);
  for (const version of Object.keys(raw.expect as object)) {
    const base = version.split("+")[0]!;
    if (version !== "default" && !known.has(base)) throw src.error(["expect", version], `unknown version "${version}" (known: default, ${[...known].join(", ")}, each optionally +patch.diff)`, true);
  }
  const backends = Object.entries((raw.backends as Record<string, { hosts: string[]; mode?: unknown }>) ?? {}).map(([name, b]) => ({ name, hosts: b.hosts, mode: parseMode(src, ["backends", name, "mode"], b.mode) }));
  const names = new Set(backends.map((b) => b.name));
  const marks: Marks = new Map();
  const steps = (raw.steps as Record<string, unknown>[]).map((s, i) => toStep(src, i, s, dirname(file), marks));
  // Names a step may use for a node: backends, their host names, the scenario's hosts, the providers'.
  const hostNames = new Set([...providerHosts(), ...Object.keys((raw.hosts as object) ?? {}), ...backends.flatMap((b) => b.hosts)].map((h) => h.toLowerCase()));
  const nodeKnown = (path: PathKey[], entry: string): void => {
    if (isIPv4(entry) || isIPv6(entry) || names.has(entry) || hostNames.has(entry.toLowerCase())) return;
    throw src.error(path, `"${entry}" is neither an address, a backend (${[...names].join(", ") || "none"}) nor a host name the scenario knows`);
  };
  steps.forEach((s, i) => {
    if (s.kind === "backend" && !names.has(s.name)) throw src.error(["steps", i, "backend", "name"], `unknown backend "${s.name}" (defined: ${[...names].join(", ") || "none"})`);
    if (s.kind === "dns") {
      const bad = s.entries.findIndex((e) => !isIPv4(e) && !isIPv6(e) && !names.has(e));
      if (bad >= 0) throw src.error(["steps", i, "dns", "addresses", bad], `"${s.entries[bad]}" is neither a loopback address nor a backend (defined: ${[...names].join(", ") || "none"})`);
    }
    if (s.kind === "health") nodeKnown(["steps", i, "health", "node"], s.setting.node);
    if (s.kind === "assert") s.assertion.checkers?.forEach((c, k) => c.targets?.forEach((t, j) => nodeKnown(["steps", i, "assert", "checkers", k, "targets", j], t.node)));
    if (s.kind === "assert" && s.assertion.received?.backend !== undefined && !names.has(s.assertion.received.backend)) {
      throw src.error(["steps", i, "assert", "received", "backend"], `unknown backend "${s.assertion.received.backend}" (defined: ${[...names].join(", ") || "none"})`);
    }
  });
  const scenario: Scenario = {
    file: display,
    name: raw.name as string,
    tags: (raw.tags as string[]) ?? [],
    hosts: (raw.hosts as Scenario["hosts"]) ?? {},
    backends,
    steps,
    expect: raw.expect as Scenario["expect"],
  };
  if (raw.issue !== undefined) scenario.issue = raw.issue as string;
  if (raw.workers !== undefined) scenario.workers = raw.workers as number;
  if (raw.log_level !== undefined) scenario.logLevel = raw.log_level as LogLevel;
  const workers = scenario.workers ?? 1;
  steps.forEach((s, i) => {
    if (s.kind === "request" && s.worker !== undefined && scenario.workers !== undefined && s.worker >= workers) {
      throw src.error(["steps", i, "request", "worker"], `worker ${s.worker} does not exist: the scenario has ${workers} worker(s), numbered from 0`);
    }
  });
  if (raw.description !== undefined) scenario.description = raw.description as string;
  return { scenario, inputs: [resolve(file), join(FIXTURES_DIR, "hosts.json"), ...src.reads] };
}
