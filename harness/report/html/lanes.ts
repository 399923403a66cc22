/**
 * A run's timeline as the HTML page draws it: lanes (rows), points and spans on the run's own
 * time axis, and the texts shown on hover or click. Built here, in Node, so the page only draws;
 * numbers are packed into flat arrays to keep an hour-long run's page small.
 */
import type { TraceEvent } from "../../gateway/trace.ts";
import type { RunResult, StepRecord } from "../../runner/result.ts";

/** Point styles; the page has one series (colour, symbol, legend entry) per style. */
export const STYLES = [
  "admin",
  "admin failed",
  "request",
  "request failed",
  "tick",
  "tick failed",
  "checker created",
  "checker kept",
  "checker rebuilt",
  "checker destroyed",
  "probe ok",
  "probe failed",
  "healthy",
  "unhealthy",
  "warn",
  "error",
  "bug assertion held",
  "assertion failed",
  "bug assertion not held",
  "step",
] as const;
export type Style = (typeof STYLES)[number];

export interface LaneModel {
  /** "virtual" / "real": recorded by the target; "steps": none recorded, drawn from the steps. */
  clock: "virtual" | "real" | "steps";
  /** Last time on the axis (ms since the run started). */
  end: number;
  /** Lane keys, top to bottom; the page shows them as labels and merges two runs by key. */
  lanes: string[];
  /** Quadruples: time, lane index, style index, detail index. */
  points: number[];
  /** Quadruples: start, end, lane index, detail index (checker lifetimes). */
  spans: number[];
  /** Scenario marks: [time, name]. */
  marks: [number, string][];
  /** Hover and click texts, each kept once (without the time: the page adds it from the axis). */
  details: string[];
}

/** Lane kinds top to bottom (a lane key is its kind, or `kind · what`). */
export const LANE_ORDER = ["admin", "request", "assert", "step", "tick create", "tick working", "checker", "target", "log"];

function laneRank(key: string): number {
  const i = LANE_ORDER.indexOf(key.split(" · ")[0]!);
  return i < 0 ? LANE_ORDER.length : i;
}

/** `/apisix-x/routes/1#plugins['ai-proxy-multi'].instances[0]` -> `route 1 instances[0]`. */
export function resourceLabel(resource: string): string {
  const m = /\/routes\/([^#/]+)#.*?(instances\[\d+\])/.exec(resource);
  if (m) return `route ${m[1]} ${m[2]}`;
  return resource.replace(/^\/apisix[^/]*\//, "");
}

/** Workers get lanes of their own where a gateway runs several. */
function onWorker(worker: number | undefined): string {
  return worker === undefined ? "" : ` · worker ${worker}`;
}

/** One lane per address: versions that name the host differently still share the row. */
function targetLane(target: string): string {
  return `target · ${/\(([^()]+)\)$/.exec(target)?.[1] ?? target}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 3)} s`;
}

function poolsText(pools: Extract<TraceEvent, { lane: "tick" }>["pools"], checkerName: (c: string) => string): string {
  const waiting = Object.entries(pools.waiting).map(([p, v]) => `  ${resourceLabel(p)} wants version ${v}`);
  const working = Object.entries(pools.working).map(([p, w]) => `  ${resourceLabel(p)}: ${checkerName(w.checker)} at version ${w.version}`);
  return [`waiting pool (${waiting.length}):`, ...waiting, `working pool (${working.length}):`, ...working].join("\n");
}

/** The index of `value` in `list`, appending it the first time. */
function intern(list: string[], index: Map<string, number>, value: string): number {
  let i = index.get(value);
  if (i === undefined) {
    i = list.push(value) - 1;
    index.set(value, i);
  }
  return i;
}

class Builder {
  readonly lanes: string[] = [];
  private readonly laneIndex = new Map<string, number>();
  readonly points: number[] = [];
  readonly spans: number[] = [];
  readonly details: string[] = [];
  private readonly detailIndex = new Map<string, number>();
  private readonly checkerNames = new Map<string, string>();
  end = 0;

  lane(key: string): number {
    return intern(this.lanes, this.laneIndex, key);
  }

  detail(text: string): number {
    return intern(this.details, this.detailIndex, text);
  }

  point(t: number, lane: string, style: Style, detail: string): void {
    this.points.push(t, this.lane(lane), STYLES.indexOf(style), this.detail(detail));
    if (t > this.end) this.end = t;
  }

  span(t0: number, t1: number, lane: string, detail: string): void {
    this.spans.push(t0, t1, this.lane(lane), this.detail(detail));
  }

  /** Checkers are numbered per run in order of appearance, so two runs read alike. */
  checker(name: string): string {
    let n = this.checkerNames.get(name);
    if (n === undefined) {
      n = `checker #${this.checkerNames.size + 1}`;
      this.checkerNames.set(name, n);
    }
    return n;
  }

  /** Lanes sorted by kind (stable within a kind), with point and span lane indexes remapped. */
  sorted(): { lanes: string[]; points: number[]; spans: number[] } {
    const order = this.lanes.map((key, i) => ({ key, i })).sort((a, b) => laneRank(a.key) - laneRank(b.key) || a.i - b.i);
    const remap = new Array<number>(this.lanes.length);
    order.forEach((o, n) => (remap[o.i] = n));
    const points = this.points.slice();
    for (let k = 1; k < points.length; k += 4) points[k] = remap[points[k]!]!;
    const spans = this.spans.slice();
    for (let k = 2; k < spans.length; k += 4) spans[k] = remap[spans[k]!]!;
    return { lanes: order.map((o) => o.key), points, spans };
  }
}

function addEvents(b: Builder, events: TraceEvent[]): void {
  /** Open checker lifetimes: checker name -> start, lane, first version. */
  const open = new Map<string, { t: number; lane: string; version: string | undefined; resource: string }>();
  const close = (name: string, t: number, how: string): void => {
    const o = open.get(name);
    if (!o) return;
    open.delete(name);
    b.span(o.t, t, o.lane, `${b.checker(name)} for ${resourceLabel(o.resource)}: from ${seconds(o.t)} to ${seconds(t)} (${how})`);
  };
  for (const e of events) {
    switch (e.lane) {
      case "admin":
        // The runner's own reads (checker assertions) are not part of the story.
        if (e.method === "GET") break;
        b.point(e.t, "admin", e.status < 300 ? "admin" : "admin failed", `admin ${e.method} ${e.path} -> ${e.status}`);
        break;
      case "request":
        b.point(e.t, `request${onWorker(e.worker)}`, e.status < 300 ? "request" : "request failed", `${e.method} ${e.path} -> ${e.status}${e.instance ? ` answered by instance ${e.instance}` : ""}`);
        break;
      case "tick": {
        const name = e.timer === "create" ? "timer_create_checker" : "timer_working_pool_check";
        const head = `${name} ${e.ok ? "ran" : `failed: ${e.error}`}`;
        b.point(e.t, `tick ${e.timer}${onWorker(e.worker)}`, e.ok ? "tick" : "tick failed", `${head}\n${poolsText(e.pools, (c) => b.checker(c))}`);
        break;
      }
      case "checker": {
        const lane = `checker · ${resourceLabel(e.resource)}${onWorker(e.worker)}`;
        const who = b.checker(e.checker);
        const version = e.version !== undefined ? ` at version ${e.version}` : "";
        const previous = e.previous !== undefined ? `, replacing ${b.checker(e.previous)}` : "";
        b.point(e.t, lane, `checker ${e.action}`, `${who} ${e.action} for ${resourceLabel(e.resource)}${version}${previous}`);
        if (e.action === "created" || e.action === "rebuilt") {
          if (e.previous !== undefined) close(e.previous, e.t, `replaced by ${who}`);
          open.set(e.checker, { t: e.t, lane, version: e.version, resource: e.resource });
        } else if (e.action === "destroyed") close(e.checker, e.t, "destroyed");
        break;
      }
      case "probe":
        b.point(e.t, targetLane(e.target), e.ok ? "probe ok" : "probe failed", `probe of ${e.target} by ${b.checker(e.checker)}: ${e.result}`);
        break;
      case "health":
        b.point(e.t, targetLane(e.target), e.healthy ? "healthy" : "unhealthy", `${e.target} is now ${e.healthy ? "healthy" : "unhealthy"} (${b.checker(e.checker)})`);
        break;
      case "log":
        if (e.level === "warn" || e.level === "error") b.point(e.t, "log", e.level, e.text);
        break;
    }
  }
  const end = b.end;
  for (const name of [...open.keys()]) close(name, end, "still working at the end");
}

/** Steps that act on the world or the gateway: drawn on the step lane even with a timeline. */
const ACTIONS = new Set(["backend", "etcd", "dns", "inject", "restore", "health", "call"]);

function assertionStyle(s: StepRecord): Style | undefined {
  // A call is judged like an assertion.
  if (s.kind !== "assert" && s.kind !== "call") return undefined;
  if (!s.ok) return "assertion failed";
  if (s.bug) return s.held ? "bug assertion held" : "bug assertion not held";
  return undefined;
}

function stepText(s: StepRecord): string {
  return `step ${s.index}: ${s.summary}${s.message ? `\n${s.message}` : ""}${s.observed !== undefined ? `\nobserved: ${JSON.stringify(s.observed, null, 1)}` : ""}`;
}

/** The lanes of one run: its recorded timeline, or (none recorded) its steps. */
export function runLanes(run: RunResult): LaneModel {
  const b = new Builder();
  const marks: [number, string][] = [];
  for (const s of run.steps) {
    if (s.kind === "mark") marks.push([s.atMs, s.summary.replace(/^mark /, "")]);
    const style = assertionStyle(s);
    if (style) b.point(s.atMs, "assert", style, stepText(s));
    // Without a recorded timeline the steps are all there is to draw.
    else if (!run.timeline && s.kind !== "mark" && s.kind !== "assert") {
      const lane = s.kind === "admin" || s.kind === "request" ? s.kind : "step";
      b.point(s.atMs, lane, lane === "step" || s.ok ? lane : `${lane} failed`, stepText(s));
    } else if (ACTIONS.has(s.kind)) b.point(s.atMs, "step", "step", stepText(s));
    if ((s.kind === "wait" || s.kind === "tick") && s.ok) b.end = Math.max(b.end, s.atMs + Number(/\bwait(?:ed)? (\d+) ms/.exec(s.summary)?.[1] ?? 0));
  }
  if (run.timeline) addEvents(b, run.timeline.events);
  const { lanes, points, spans } = b.sorted();
  return { clock: run.timeline?.clock ?? "steps", end: b.end, lanes, points, spans, marks, details: b.details };
}
