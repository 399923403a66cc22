export { UsageError } from "../errors.ts";

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** What main gives every command: the signal that says the command is being interrupted. */
export interface CommandContext {
  signal: AbortSignal;
}
