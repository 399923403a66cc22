import fc from "fast-check";

/**
 * A fast-check plugin that ends a check once `signal` aborts (the command was interrupted): the
 * next run, or shrink step, is reported to fast-check as an interruption instead of being made.
 * The caller then throws the verdict away; a run in flight finishes first.
 */
export function stopOnAbort<Ts>(signal: AbortSignal): fc.Plugin<Ts> {
  return () => ({
    decorateRun: (nestedRun) => (value) => (signal.aborted ? new fc.PreconditionFailure(true) : nestedRun(value)),
  });
}
