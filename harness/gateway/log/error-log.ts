import { appendFileSync } from "node:fs";
import type { Clock } from "../clock/clock.ts";
import type { Tracer } from "../trace.ts";

export type LogLevel = "debug" | "info" | "notice" | "warn" | "error";

export interface LogLine {
  /** Clock time of the line, ms since the epoch. */
  time: number;
  level: LogLevel;
  /** Lua source file (e.g. `healthcheck_manager.lua`) and line that logged it. */
  file: string;
  line: number;
  /** The Lua function name; nginx prints none for anonymous functions. */
  fn?: string;
  message: string;
  context: string;
  /** The line as nginx writes it. */
  text: string;
  /** The worker that wrote it. */
  pid?: number;
}

export interface LogSource {
  file: string;
  line: number;
  fn?: string;
}

const LEVEL_RANK: Record<LogLevel, number> = { debug: 0, info: 1, notice: 2, warn: 3, error: 4 };

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

let formattedSecond = NaN;
let formatted = "";

/** nginx's error log time format, `YYYY/MM/DD HH:MM:SS`, in UTC (the last second's text is kept). */
export function formatLogTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== formattedSecond) {
    formatted = formatTime(ms);
    formattedSecond = second;
  }
  return formatted;
}

function formatTime(ms: number): string {
  const d = new Date(ms);
  return (
    `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
  );
}

export interface ErrorLogOptions {
  clock: Clock;
  /** Lines below this level are not kept (APISIX's default error_log level is warn). */
  level?: LogLevel;
  /** Also append every line to this file. */
  file?: string;
  /** Also hand every line to this sink (serve mode prints to stdout). */
  sink?: (text: string) => void;
  /** Also put every kept line on the run's timeline. */
  trace?: Tracer;
  pid?: number;
}

/** An nginx-format error log, kept in memory for assertions. */
export class ErrorLog {
  readonly lines: LogLine[] = [];
  private readonly minRank: number;
  private connection = 0;

  constructor(private readonly opts: ErrorLogOptions) {
    this.minRank = LEVEL_RANK[opts.level ?? "warn"];
  }

  write(level: LogLevel, source: LogSource, message: string, context = "ngx.timer"): void {
    const entry: LuaLogEntry = { level, file: source.file, line: source.line, message, suffix: context.startsWith("client:") ? context : `context: ${context}` };
    if (source.fn) entry.fn = source.fn;
    this.writeEntry(entry);
  }

  /**
   * A line as ngx_lua writes it: `[lua] file:line: fn(): message` (no `[lua]` part for lines
   * nginx writes itself), then `, context: ngx.timer` or a request's `, client: ...` part.
   */
  writeEntry(e: LuaLogEntry): void {
    if (LEVEL_RANK[e.level] < this.minRank) return;
    const time = e.time ?? this.opts.clock.now();
    const pid = e.pid ?? this.opts.pid ?? 4242;
    this.connection += 1;
    const where = e.file !== undefined ? `[lua] ${e.file}:${e.line ?? 0}: ${e.fn ? `${e.fn}(): ` : ""}` : "";
    const text = `${formatLogTime(time)} [${e.level}] ${pid}#${pid}: *${this.connection} ${where}${e.message}, ${e.suffix}`;
    const context = e.suffix.startsWith("context: ") ? e.suffix.slice("context: ".length) : e.suffix;
    const line: LogLine = { time, level: e.level, file: e.file ?? "", line: e.line ?? 0, message: e.message, context, text, pid };
    if (e.fn) line.fn = e.fn;
    this.lines.push(line);
    if (this.opts.file) appendFileSync(this.opts.file, text + "\n");
    this.opts.sink?.(text);
    this.opts.trace?.log(e.level, text, time);
  }
}

export interface LuaLogEntry {
  level: LogLevel;
  /** Basename of the Lua source; absent for lines nginx writes itself (no `[lua]` part). */
  file?: string;
  line?: number;
  fn?: string;
  message: string;
  /** `context: ngx.timer`, or a request's `client: ..., server: ..., request: "..."`. */
  suffix: string;
  pid?: number;
  /** When it was logged (ms), if not now: a Lua worker runs ahead of the clock between other timers. */
  time?: number;
}
