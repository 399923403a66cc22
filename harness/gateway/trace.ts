/**
 * The timeline of a gateway run: what happened, when, on which lane. Every engine (the
 * TypeScript model and the Lua one) emits the same events, so payloads are plain strings,
 * numbers and JSON, never engine objects. A gateway records only when it was given a recorder;
 * without one every call is a no-op (property runs pay nothing).
 */

/** Waiting pool (resource path -> wanted version) and working pool after a manager tick. */
export interface PoolsSnapshot {
  waiting: Record<string, string>;
  working: Record<string, { version: string; checker: string }>;
}

export type CheckerAction = "created" | "kept" | "rebuilt" | "destroyed";

/** The two health-check manager timers: timer_create_checker and timer_working_pool_check. */
export type TimerName = "create" | "working";

/**
 * `t`: ms on the gateway's clock (the run result re-bases it to ms since the run started).
 * `worker`: which nginx worker, where a gateway runs more than one (the lua engine can).
 */
export type TraceEvent =
  | { lane: "admin"; t: number; method: string; path: string; status: number }
  | { lane: "request"; t: number; method: string; path: string; status: number; instance?: string; worker?: number }
  | { lane: "tick"; t: number; timer: TimerName; ok: boolean; error?: string; pools: PoolsSnapshot; worker?: number }
  | { lane: "checker"; t: number; action: CheckerAction; checker: string; resource: string; version?: string; previous?: string; worker?: number }
  | { lane: "probe"; t: number; checker: string; target: string; result: string; ok: boolean }
  | { lane: "health"; t: number; checker: string; target: string; healthy: boolean }
  | { lane: "log"; t: number; level: string; text: string };

export type TraceLane = TraceEvent["lane"];

export interface TraceRecorder {
  record(event: TraceEvent): void;
}

/** Keeps every event in memory, in order (what the in-process target hands to the runner). */
export class TimelineRecorder implements TraceRecorder {
  readonly events: TraceEvent[] = [];

  record(event: TraceEvent): void {
    this.events.push(event);
  }
}

/**
 * What engine code calls: one method per lane, the clock read here. `on` lets a caller skip
 * building an expensive payload (a pools snapshot) when nothing records.
 */
export class Tracer {
  constructor(
    private readonly recorder: TraceRecorder | undefined,
    private readonly now: () => number,
  ) {}

  get on(): boolean {
    return this.recorder !== undefined;
  }

  admin(method: string, path: string, status: number): void {
    this.recorder?.record({ lane: "admin", t: this.now(), method, path, status });
  }

  request(method: string, path: string, status: number, instance?: string, worker?: number): void {
    if (!this.recorder) return;
    const e: TraceEvent = { lane: "request", t: this.now(), method, path, status };
    if (instance !== undefined) e.instance = instance;
    if (worker !== undefined) e.worker = worker;
    this.recorder.record(e);
  }

  tick(timer: TimerName, error: string | undefined, pools: () => PoolsSnapshot, worker?: number): void {
    if (!this.recorder) return;
    const e: TraceEvent = { lane: "tick", t: this.now(), timer, ok: error === undefined, pools: pools() };
    if (error !== undefined) e.error = error;
    if (worker !== undefined) e.worker = worker;
    this.recorder.record(e);
  }

  checker(action: CheckerAction, checker: string, resource: string, extra: { version?: string; previous?: string; worker?: number } = {}): void {
    this.recorder?.record({ lane: "checker", t: this.now(), action, checker, resource, ...extra });
  }

  probe(checker: string, target: string, result: string, ok: boolean): void {
    this.recorder?.record({ lane: "probe", t: this.now(), checker, target, result, ok });
  }

  health(checker: string, target: string, healthy: boolean): void {
    this.recorder?.record({ lane: "health", t: this.now(), checker, target, healthy });
  }

  /** An event stamped elsewhere (a Lua worker runs ahead of the clock between other timers). */
  stamped(event: TraceEvent): void {
    this.recorder?.record(event);
  }

  /** `t`: the line's own time, where it was stamped elsewhere (a Lua worker's line). */
  log(level: string, text: string, t?: number): void {
    this.recorder?.record({ lane: "log", t: t ?? this.now(), level, text });
  }
}

/** A tracer that records nothing, for code built without a gateway around it (unit tests). */
export const NO_TRACE = new Tracer(undefined, () => 0);
