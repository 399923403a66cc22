/**
 * Error-log lines quoted in a bug report, turned into the pattern of a `log` assertion: the Lua
 * file names and the message are kept; the nginx prefix (time, pid, connection) is dropped, a
 * file's directory may differ, and a line number becomes `\d+` where the versions the report
 * quotes differ in it.
 */

export interface QuotedLine {
  /** Report line (1-based) where the quote starts. */
  line: number;
  level: string;
  /** The quote with continuation lines joined, nginx prefix removed. */
  message: string;
  /** The release the report says it comes from (from the lines just above it), if any. */
  version?: string;
}

export interface LogSignature {
  level: string;
  /** Regular expression (JavaScript syntax) for the assertion's `matches`. */
  pattern: string;
  /** Versions whose quotes it was made from. */
  versions: string[];
  lines: number[];
}

const LEVEL = /\[(error|warn|crit|alert|emerg)\]/;
/** A release number, not part of an address or a longer dotted number. */
export const VERSION = /(?<![\d.])(\d+\.\d+\.\d+)(?![.\d])/g;

/** Lines of the report that quote error-log lines, with indented continuation lines joined. */
export function findQuotedLines(text: string): QuotedLine[] {
  const lines = text.split(/\r?\n/);
  const out: QuotedLine[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = LEVEL.exec(lines[i]!);
    if (!m) continue;
    let body = lines[i]!.slice(m.index + m[0].length);
    let j = i + 1;
    // A wrapped quote: the line break is kept so the pattern can allow any blank there.
    while (j < lines.length && /^[ \t]+\S/.test(lines[j]!) && !LEVEL.test(lines[j]!)) body += "\n" + lines[j++]!.trim();
    const q: QuotedLine = { line: i + 1, level: m[1]!, message: stripPrefix(body) };
    // "On APISIX 3.15.0:" just above the quote (blank lines and other quotes in between are fine).
    for (let k = i - 1, seen = 0; k >= 0 && seen < 3; k--) {
      if (lines[k]!.trim() === "" || LEVEL.test(lines[k]!)) continue;
      // Not above a command or a code fence: a version there is not about this quote.
      if (/^\s*(?:[$>]\s+)?curl\s|^\s*```/.test(lines[k]!)) break;
      seen++;
      const v = [...lines[k]!.matchAll(VERSION)].pop();
      if (v) {
        q.version = v[1]!;
        break;
      }
    }
    out.push(q);
    i = j - 1;
  }
  return out;
}

/** Drop what nginx puts before the message: pid#tid, *connection, [lua]. */
function stripPrefix(s: string): string {
  return s
    .trim()
    .replace(/^\d+#\d+:\s*/, "")
    .replace(/^\*\d+\s*/, "")
    .replace(/^\[lua\]\s*/, "")
    .trim();
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const FILE_LINE = /((?:[\w.-]*\/)*)([\w-]+\.lua):(\d+)/g;

interface Shape {
  /** Literal pieces between file:line places. */
  texts: string[];
  files: string[];
  lineNumbers: number[];
}

function shapeOf(message: string): Shape {
  const texts: string[] = [];
  const files: string[] = [];
  const lineNumbers: number[] = [];
  let last = 0;
  for (const m of message.matchAll(FILE_LINE)) {
    texts.push(message.slice(last, m.index));
    files.push(m[2]!);
    lineNumbers.push(Number(m[3]));
    last = m.index! + m[0].length;
  }
  texts.push(message.slice(last));
  return { texts, files, lineNumbers };
}

/** Text kept as it is, except where the quote wrapped (any blank) and the client address of request lines. */
function literal(text: string): string {
  return text
    .split(/[ \t]*\n[ \t]*/)
    .map((part) => escapeRegExp(part.replace(/[ \t]+/g, " ")).replace(/client: [^,]+/g, "client: [^,]+"))
    .join("\\s+");
}

function patternOf(shape: Shape, numbers: (number | undefined)[]): string {
  let p = literal(shape.texts[0]!);
  shape.files.forEach((f, i) => {
    p += `(?:\\S*/)?${escapeRegExp(f)}:${numbers[i] === undefined ? "\\d+" : numbers[i]}${literal(shape.texts[i + 1]!)}`;
  });
  return p;
}

/**
 * One signature per distinct message: quotes of the same message from several versions become
 * one pattern, with `\d+` for the line numbers that differ between them.
 */
export function signatures(quotes: QuotedLine[]): LogSignature[] {
  const groups = new Map<string, { level: string; shape: Shape; quotes: QuotedLine[] }>();
  for (const q of quotes) {
    const shape = shapeOf(q.message);
    const key = `${q.level}\u0000${shape.texts.join("\u0000")}\u0000${shape.files.join("\u0000")}`;
    const g = groups.get(key);
    if (g) g.quotes.push(q);
    else groups.set(key, { level: q.level, shape, quotes: [q] });
  }
  return [...groups.values()].map((g) => {
    const numbers = g.shape.lineNumbers.map((n, i) => (g.quotes.every((q) => shapeOf(q.message).lineNumbers[i] === n) ? n : undefined));
    return {
      level: g.level,
      pattern: patternOf(g.shape, numbers),
      versions: [...new Set(g.quotes.map((q) => q.version).filter((v): v is string => v !== undefined))],
      lines: g.quotes.map((q) => q.line),
    };
  });
}
