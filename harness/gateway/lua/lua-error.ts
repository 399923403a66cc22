/**
 * A Lua runtime error as APISIX would raise it: the message carries the chunk path and line,
 * e.g. `/usr/local/apisix/apisix/healthcheck_manager.lua:242: attempt to index local 'upstream'
 * (a nil value)`. The reference gateway throws these where the real code would crash, and the
 * timers' protected calls log them, so the log reads like the real one.
 */
export const APISIX_ROOT = "/usr/local/apisix/apisix/";

export class LuaError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly luaMessage: string,
  ) {
    super(`${APISIX_ROOT}${file}:${line}: ${luaMessage}`);
    this.name = "LuaError";
  }
}

export function indexNil(file: string, line: number, local: string): LuaError {
  return new LuaError(file, line, `attempt to index local '${local}' (a nil value)`);
}

/** What a protected call (pcall) yields as its error value: the Lua message, or a JS error's text. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
