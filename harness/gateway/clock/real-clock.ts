import type { Clock, TimerCallback, TimerHandle } from "./clock.ts";

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
    return new Promise((resolve) => setTimeout(resolve, ms));
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
