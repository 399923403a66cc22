/**
 * Time for the gateway. The in-process target uses a virtual clock (deterministic, instant);
 * `serve` uses real time. Timer callbacks may return a promise: the virtual clock awaits it before
 * firing the next timer, so the work a timer starts (probes, log lines) is done when `advance` returns.
 */

export type TimerCallback = () => void | Promise<void>;

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  readonly kind: "virtual" | "real";
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Run `fn` every `intervalMs`, first after one interval (as ngx.timer.every does). */
  every(intervalMs: number, fn: TimerCallback): TimerHandle;
  /** Run `fn` once after `delayMs`. */
  after(delayMs: number, fn: TimerCallback): TimerHandle;
  /** Let `ms` pass: advances a virtual clock, sleeps on a real one. */
  sleep(ms: number): Promise<void>;
  /** Cancel every timer. */
  stopAll(): void;
  /**
   * From inside a timer callback: how far the caller may run its own timers without passing any
   * other timer of this clock (a virtual clock's next timer, or the end of the current advance).
   * A real clock answers now.
   */
  horizon(): number;
}
