/**
 * A curl command line as the request it sends: method, URL, headers, body. Only what bug reports
 * use is read; anything else is reported back as not translated rather than guessed at.
 */
import { lineAt, NotTranslated, type ShellCommand, type Word } from "./shell.ts";

export interface CurlRequest {
  method: string;
  url: string;
  /** Offset of the URL in the report (for errors about it). */
  urlOffset: number;
  headers: [string, string][];
  /** The body text and the offset of its first character in the report. */
  body?: { text: string; offset: number };
  /** Options read but not translated (e.g. `-o file`), for the report's comment. */
  ignored: string[];
}

/** Options that only change what curl prints or how it connects: nothing to translate. */
const QUIET = new Set(["-s", "--silent", "-S", "--show-error", "-i", "--include", "-v", "--verbose", "-k", "--insecure", "-L", "--location", "-f", "--fail", "--compressed", "-sS", "-Ss", "-sv", "-vs", "-si", "-is", "-sL", "-Ls", "--no-buffer", "-N", "-g", "--globoff", "--http1.1"]);
/** Options that take a value we do not use. */
const IGNORED_WITH_VALUE = new Set(["-o", "--output", "-w", "--write-out", "-m", "--max-time", "--connect-timeout", "-u", "--user", "-A", "--user-agent", "--retry", "-e", "--referer"]);
const DATA = new Set(["-d", "--data", "--data-raw", "--data-binary", "--data-ascii", "--json"]);

function value(words: Word[], i: number, text: string, opt: string): Word {
  const w = words[i + 1];
  if (!w) throw new NotTranslated(lineAt(text, words[i]!.offset), `curl ${opt} needs a value`);
  return w;
}

/** Parse `curl ...` words. Throws NotTranslated for what the importer does not read, naming its line. */
export function parseCurl(cmd: ShellCommand, text: string): CurlRequest {
  const words = cmd.words.slice(1);
  let method: string | undefined;
  let url: Word | undefined;
  const headers: [string, string][] = [];
  const bodies: Word[] = [];
  let json = false;
  let head = false;
  const ignored: string[] = [];
  const expanding = words.find((w) => w.expands);
  if (expanding) throw new NotTranslated(lineAt(text, expanding.offset), `curl argument uses shell expansion ($(...), \`...\` or $VAR), which cannot be imported: ${expanding.text.slice(0, 60)}`);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const t = w.text;
    const at = lineAt(text, w.offset);
    if (t === "-X" || t === "--request") method = value(words, i++, text, t).text.toUpperCase();
    else if (/^-X[A-Z]+$/.test(t)) method = t.slice(2);
    else if (t === "-H" || t === "--header") {
      const h = value(words, i++, text, t).text;
      const colon = h.indexOf(":");
      if (colon <= 0) throw new NotTranslated(at, `curl header "${h}" has no "name: value"`);
      headers.push([h.slice(0, colon).trim(), h.slice(colon + 1).trim()]);
    } else if (DATA.has(t)) {
      const v = value(words, i++, text, t);
      if (v.text.startsWith("@")) throw new NotTranslated(lineAt(text, v.offset), `curl ${t} ${v.text} reads the body from a file the report does not include`);
      if (t === "--json") json = true;
      bodies.push(v);
    } else if (t.startsWith("--data") && t.includes("=")) {
      throw new NotTranslated(at, `curl ${t.split("=")[0]}=... is not supported: give the body as -d '...'`);
    } else if (t === "-I" || t === "--head") head = true;
    else if (t === "-F" || t === "--form") throw new NotTranslated(at, "curl -F (multipart form) cannot be imported");
    else if (QUIET.has(t)) continue;
    else if (IGNORED_WITH_VALUE.has(t)) ignored.push(`${t} ${value(words, i++, text, t).text}`);
    else if (t === "--url") url = value(words, i++, text, t);
    else if (t.startsWith("-")) throw new NotTranslated(at, `curl option ${t} is not supported by the importer`);
    else if (url) throw new NotTranslated(at, `curl with a second URL (${t}) cannot be imported`);
    else url = w;
  }
  if (!url) throw new NotTranslated(cmd.line, "curl command without a URL");
  const req: CurlRequest = { method: method ?? (head ? "HEAD" : bodies.length > 0 ? "POST" : "GET"), url: url.text, urlOffset: url.offset, headers, ignored };
  if (json && !headers.some(([k]) => k.toLowerCase() === "content-type")) headers.push(["Content-Type", "application/json"]);
  // curl joins several -d values with '&'; the offset is the first one's.
  if (bodies.length > 0) req.body = { text: bodies.map((b) => b.text).join("&"), offset: bodies[0]!.offset };
  return req;
}
