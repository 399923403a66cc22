import type { Clock, TimerCallback, TimerHandle } from "./clock.ts";

/** setTimeout's longest delay; longer ones fire after 1 ms (with a TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Sleep on real time. Delays beyond setTimeout's limit are slept in pieces, and an abort ends the
 * sleep at once (rejecting with the signal's reason).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const until = Date.now() + Math.max(0, ms);
    const arm = (): void => {
      const left = until - Date.now();
      if (left <= 0) {
        signal?.removeEventListener("abort", onAbort);
        resolve();
        return;
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    arm();
  });
}

/** Wall-clock time, for `serve` and external targets. Overlapping runs of a timer are skipped. */
export class RealClock implements Clock {
  readonly kind = "real" as const;
  private handles = new Set<NodeJS.Timeout>();

  now(): number {
    return Date.now();
  }

  every(intervalMs: number, fn: TimerCallback): TimerHandle {
    let running = false;
    const h = setInterval(() => {
      if (running) return;
      running = true;
      Promise.resolve()
        .then(fn)
        .catch(() => undefined)
        .finally(() => {
          running = false;
        });
    }, intervalMs);
    this.handles.add(h);
    return { cancel: () => this.clear(h) };
  }

  after(delayMs: number, fn: TimerCallback): TimerHandle {
    const h = setTimeout(() => {
      this.handles.delete(h);
      void Promise.resolve().then(fn).catch(() => undefined);
    }, delayMs);
    this.handles.add(h);
    return { cancel: () => this.clear(h) };
  }

  sleep(ms: number): Promise<void> {
    return sleep(ms);
  }

  horizon(): number {
    return Date.now();
  }

  stopAll(): void {
    for (const h of this.handles) clearTimeout(h);
    this.handles.clear();
  }

  private clear(h: NodeJS.Timeout): void {
    clearTimeout(h);
    this.handles.delete(h);
  }
}
