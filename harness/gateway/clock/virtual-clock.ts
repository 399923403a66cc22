import type { Clock, TimerCallback, TimerHandle } from "./clock.ts";

/**
 * Firing timers is a chain of awaited promises that never lets the event loop turn by itself, so a
 * long advance would hold off signal handlers (Ctrl-C) and I/O. Every this many ms of wall time
 * it yields one turn.
 */
const YIELD_EVERY_MS = 50;
let lastYield = performance.now();

async function yieldTurn(): Promise<void> {
  await new Promise<void>((r) => setImmediate(r));
  lastYield = performance.now();
}

interface Scheduled {
  due: number;
  seq: number;
  interval: number | undefined;
  fn: TimerCallback;
  cancelled: boolean;
}

/**
 * A clock that only moves when told. Due timers fire in (due time, creation order), each awaited,
 * so a run is deterministic. A timer due exactly at the end of an advance fires within it.
 */
export class VirtualClock implements Clock {
  readonly kind = "virtual" as const;
  private current: number;
  private seq = 0;
  private timers: Scheduled[] = [];
  private advancing: Promise<void> = Promise.resolve();
  /** The end of the advance in progress. */
  private target: number | undefined;

  constructor(startMs: number = Date.UTC(2026, 0, 1, 0, 0, 0)) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  every(intervalMs: number, fn: TimerCallback): TimerHandle {
    return this.schedule(intervalMs, intervalMs, fn);
  }

  after(delayMs: number, fn: TimerCallback): TimerHandle {
    return this.schedule(delayMs, undefined, fn);
  }

  sleep(ms: number): Promise<void> {
    return this.advance(ms);
  }

  /**
   * Move time forward by `ms`, firing every timer that falls due on the way. An abort stops it
   * between two timers (rejecting with the signal's reason); time then stays where it got to.
   */
  advance(ms: number, signal?: AbortSignal): Promise<void> {
    // Serialise advances so concurrent callers cannot interleave timer work.
    const run = this.advancing.then(() => this.runUntil(this.current + Math.max(0, ms), signal));
    this.advancing = run.catch(() => undefined);
    return run;
  }

  horizon(): number {
    let limit = this.target ?? this.current;
    for (const t of this.timers) if (!t.cancelled && t.due < limit) limit = t.due;
    return Math.max(limit, this.current);
  }

  stopAll(): void {
    for (const t of this.timers) t.cancelled = true;
    this.timers = [];
  }

  private schedule(delayMs: number, interval: number | undefined, fn: TimerCallback): TimerHandle {
    const entry: Scheduled = {
      due: this.current + Math.max(0, delayMs),
      seq: this.seq++,
      interval,
      fn,
      cancelled: false,
    };
    this.timers.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  private nextDue(target: number): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const t of this.timers) {
      if (t.cancelled || t.due > target) continue;
      if (!best || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    }
    return best;
  }

  private async runUntil(target: number, signal?: AbortSignal): Promise<void> {
    this.target = target;
    try {
      for (;;) {
        if (performance.now() - lastYield >= YIELD_EVERY_MS) await yieldTurn();
        signal?.throwIfAborted();
        const t = this.nextDue(target);
        if (!t) break;
        this.current = Math.max(this.current, t.due);
        if (t.interval !== undefined && t.interval > 0) {
          t.due += t.interval;
          t.seq = this.seq++;
        } else {
          t.cancelled = true;
        }
        await t.fn();
      }
      this.timers = this.timers.filter((t) => !t.cancelled);
      this.current = target;
    } finally {
      this.target = undefined;
    }
  }
}
