/**
 * How every command is interrupted: one AbortSignal, made here and passed down. SIGINT (Ctrl-C),
 * SIGTERM and SIGHUP abort it; each command then stops what it started, in order (runs before
 * the store they use), writes no result it did not observe, and the process exits with 128 + the
 * signal's number (130 for Ctrl-C). A second signal, or a stop that takes longer than
 * FORCE_AFTER_MS, exits at once; the 'exit' handler and the reaper of harness/proc still stop
 * every child and remove every temp dir.
 */

import { constants } from "node:os";

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
type HandledSignal = (typeof SIGNALS)[number];

/** How long an orderly stop may take before the process exits anyway. */
export const FORCE_AFTER_MS = 10_000;

/** The reason of an interrupted command's signal; thrown by commands that stop because of it. */
export class Interrupted extends Error {
  constructor(readonly signal: HandledSignal) {
    super(`interrupted (${signal})`);
  }

  get exitCode(): number {
    return 128 + constants.signals[this.signal];
  }
}

export interface Interruption {
  readonly signal: AbortSignal;
  /** Remove the handlers (the command is over). */
  dispose(): void;
}

/**
 * Install the handlers for one command. `say` prints the one line a signal produces (stderr).
 */
export function interruptOnSignals(say: (line: string) => void = (l) => void process.stderr.write(l + "\n")): Interruption {
  const controller = new AbortController();
  let force: NodeJS.Timeout | undefined;
  const handlers = new Map<HandledSignal, () => void>();
  for (const sig of SIGNALS) {
    const handler = (): void => {
      const reason = new Interrupted(sig);
      if (controller.signal.aborted) {
        say(`interrupted again (${sig}): exiting now`);
        process.exit((controller.signal.reason as Interrupted).exitCode);
      }
      say(`interrupted (${sig}): stopping`);
      controller.abort(reason);
      force = setTimeout(() => {
        say(`interrupted: not stopped after ${FORCE_AFTER_MS / 1000} s, exiting now`);
        process.exit(reason.exitCode);
      }, FORCE_AFTER_MS);
      force.unref();
    };
    handlers.set(sig, handler);
    process.on(sig, handler);
  }
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(force);
      for (const [sig, h] of handlers) process.off(sig, h);
    },
  };
}

/** Throw the command's Interrupted reason when its signal fired. */
export function throwIfInterrupted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Interrupted ? signal.reason : new Interrupted("SIGINT");
}
