/**
 * How a run ends early. Two causes, told apart by the abort reason: the user interrupted the
 * command (the run was not observed to the end, so it has no result), or the per-run watchdog
 * fired (RunTimeout: the run failed, and says what it was waiting for).
 */

/** The watchdog's abort reason. */
export class RunTimeout extends Error {
  constructor(readonly ms: number) {
    super(`run timed out after ${formatMs(ms)} (--run-timeout)`);
  }
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** The signal fired for a reason other than the watchdog: the command is being interrupted. */
export function interrupted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && !(signal.reason instanceof RunTimeout);
}

/**
 * Settle with `p`, or reject with the signal's reason as soon as it aborts. What `p` does after
 * that is ignored (its rejection is swallowed), so work that cannot be cancelled cannot hold a
 * run up either.
 */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      p.catch(() => undefined);
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e as Error);
      },
    );
  });
}
