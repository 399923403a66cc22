import { appendFileSync } from "node:fs";
import type { Clock } from "../clock/clock.ts";

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
    if (LEVEL_RANK[level] < this.minRank) return;
    const time = this.opts.clock.now();
    const pid = this.opts.pid ?? 4242;
    const fn = source.fn ? `${source.fn}(): ` : "";
    this.connection += 1;
    const text =
      `${formatLogTime(time)} [${level}] ${pid}#${pid}: *${this.connection} [lua] ` +
      `${source.file}:${source.line}: ${fn}${message}, context: ${context}`;
    const entry: LogLine = { time, level, file: source.file, line: source.line, message, context, text };
    if (source.fn) entry.fn = source.fn;
    this.lines.push(entry);
    if (this.opts.file) appendFileSync(this.opts.file, text + "\n");
    this.opts.sink?.(text);
  }
}
