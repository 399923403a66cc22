/**
 * Shell commands as a bug report quotes them: a command starts on a line of its own (after an
 * optional `$ ` prompt) and runs on over backslash-newlines and over newlines inside quotes,
 * which is how a JSON body spans many lines. Words keep their offset in the report, so an error
 * can name the report's line.
 */

/** Something in the report that cannot be imported, at a line of the report (1-based). */
export class ImportError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

/** Something the importer leaves as a comment in the scenario (and names on stderr). */
export class NotTranslated extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Word {
  text: string;
  /** Offset in the report of the word's first character (inside its quotes, if quoted). */
  offset: number;
  /** Holds `$(...)`, backticks or `$VAR` outside single quotes: the shell would change it. */
  expands: boolean;
}

export interface ShellCommand {
  words: Word[];
  /** Report lines (1-based) the command spans. */
  line: number;
  endLine: number;
  /** What followed the command on its line and was not read (`| jq .`, `&& sleep 2`...). */
  rest?: string;
}

/** 1-based line of an offset. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * Read one command starting at `start` (the first character of its first word). Stops at an
 * unquoted newline, `|`, `;`, `&`, `>` or `#` at a word's start.
 */
export function readCommand(text: string, start: number): ShellCommand {
  const words: Word[] = [];
  let i = start;
  let cur: Word | undefined;
  const begin = (at: number): Word => (cur ??= { text: "", offset: at, expands: false });
  const finish = (): void => {
    if (cur) words.push(cur);
    cur = undefined;
  };
  let rest: string | undefined;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\\" && text[i + 1] === "\n") {
      i += 2;
      continue;
    }
    if (c === "\\" && text[i + 1] === "\r" && text[i + 2] === "\n") {
      i += 3;
      continue;
    }
    if (c === "\n" || c === "\r") break;
    if (c === " " || c === "\t") {
      finish();
      i++;
      continue;
    }
    if (!cur && (c === "|" || c === ";" || c === "&" || c === ">" || c === "#")) {
      const eol = text.indexOf("\n", i);
      rest = text.slice(i, eol < 0 ? undefined : eol).trim();
      break;
    }
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      if (close < 0) throw new ImportError(lineAt(text, i), "a ' quote is never closed");
      const w = begin(i + 1);
      w.text += text.slice(i + 1, close);
      i = close + 1;
      continue;
    }
    if (c === '"') {
      const w = begin(i + 1);
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw new ImportError(lineAt(text, i), 'a " quote is never closed');
        const d = text[j]!;
        if (d === '"') break;
        if (d === "\\" && '"\\$`\n'.includes(text[j + 1] ?? "")) {
          if (text[j + 1] !== "\n") w.text += text[j + 1];
          j += 2;
          continue;
        }
        if (d === "`" || (d === "$" && /[({A-Za-z_]/.test(text[j + 1] ?? ""))) w.expands = true;
        w.text += d;
        j++;
      }
      i = j + 1;
      continue;
    }
    const w = begin(i);
    if (c === "\\") {
      w.text += text[i + 1] ?? "";
      i += 2;
      continue;
    }
    if (c === "`" || (c === "$" && /[({A-Za-z_]/.test(text[i + 1] ?? ""))) w.expands = true;
    w.text += c;
    i++;
  }
  finish();
  const cmd: ShellCommand = { words, line: lineAt(text, start), endLine: lineAt(text, i) };
  if (rest) cmd.rest = rest;
  return cmd;
}

/** Offsets of lines that start a command named `name` (after blanks and an optional `$ ` prompt). */
export function commandStarts(text: string, name: string): number[] {
  const out: number[] = [];
  const re = new RegExp(`^[ \\t]*(?:[$>][ \\t]+)?(${name})(?=[ \\t])`, "gm");
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m.index + m[0].length - m[1]!.length);
  return out;
}
