/**
 * `harness import`: a bug report (markdown or plain text) to a scenario file. Read in report
 * order: curl commands against the Admin API and the data plane, `sleep N` and stated waits, the
 * host names the JSON bodies use (each gets a mock backend on loopback), and the quoted error-log
 * lines, which become the `bug: true` assertion. What is not translated stays in the file as a
 * comment and is listed in `notes`.
 */
import { Document, isCollection, isSeq, visit, type Node } from "yaml";
import { PROVIDERS, type InstanceLike } from "../gateway/providers/providers.ts";
import { PROFILES } from "../gateway/versions/index.ts";
import { parseCurl, type CurlRequest } from "./curl.ts";
import { findQuotedLines, signatures, VERSION, type LogSignature, type QuotedLine } from "./log-lines.ts";
import { commandStarts, ImportError, lineAt, NotTranslated, readCommand, type ShellCommand } from "./shell.ts";

export { ImportError } from "./shell.ts";

export interface ImportNote {
  line: number;
  text: string;
}

export interface ImportResult {
  yaml: string;
  /** What was not translated (also in the file as comments). */
  notes: ImportNote[];
  /** Versions the scenario expects to reproduce the bug. */
  reproducesOn: string[];
}

/** The mark the log assertion counts from: set after the last step before the quoted errors. */
export const ERRORS_MARK = "before-errors";
const DEFAULT_WINDOW_MS = 3000;

type StepDoc = Record<string, unknown>;

interface Item {
  line: number;
  step?: StepDoc;
  /** Admin writes and requests: the mark goes after the last one before the quotes. */
  action?: boolean;
  waitMs?: number;
  note?: string;
}

interface Backend {
  hosts: string[];
  mode?: string;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$/;
const PLACEHOLDER = /<([A-Za-z][\w.-]*)>/;
const UNHEALTHY_NAME = /unhealthy|down|dead|bad|broken|fail|unreachable/i;
const COMMAND_LIKE = /^[ \t]*(?:[$>][ \t]+)?(docker(?:-compose)?|kubectl|helm|apisix|make|git|tail|cat|grep|nginx|openresty|luarocks|export|etcdctl|systemctl|wrk|ab|hey|http|wget|for|while)[ \t]+\S.*$/gm;
const PROSE_WAIT = /\bwait(?:ing)?\s+(?:for\s+)?(?:~\s*|about\s+|around\s+|approximately\s+|roughly\s+|at\s+least\s+)?(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?)\b/i;
const REPEATS = /every second|each second|per second|repeat(?:s|edly)?|keeps? (?:failing|crashing|logging)|indefinitely|crash loop|infinite/i;
const REPRODUCES_ON = /\b(?:confirmed|reproduced|reproducible|affects?|occurs|happens)\b[^.\n]*\bon\b[^\n]*/gi;

function ms(n: number, unit: string): number {
  const u = unit.toLowerCase();
  if (u.startsWith("ms") || u.startsWith("milli")) return Math.round(n);
  if (u.startsWith("m")) return Math.round(n * 60_000);
  return Math.round(n * 1000);
}

function duration(msValue: number): string {
  return msValue % 1000 === 0 ? `${msValue / 1000}s` : `${msValue}ms`;
}

function firstLine(text: string, line: number): string {
  return text.split(/\r?\n/)[line - 1]!.trim();
}

/** The report's title: a line ending in `#1234` (a GitHub issue page), a markdown heading, or the first line. */
function title(text: string): { name: string; issue?: string } {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const withNumber = lines.find((l) => /\S\s+#\d+$/.test(l));
  if (withNumber) {
    const n = /#(\d+)$/.exec(withNumber)![1]!;
    const name = withNumber.replace(/\s*#\d+$/, "").replace(/^bug:\s*/i, "");
    return { name, issue: /apisix/i.test(text) ? `apache/apisix#${n}` : `#${n}` };
  }
  const heading = lines.find((l) => /^#\s+\S/.test(l));
  return { name: (heading ?? lines.find((l) => l.length > 0) ?? "imported bug report").replace(/^#\s+/, "").replace(/^bug:\s*/i, "") };
}

class Importer {
  private readonly items: Item[] = [];
  private readonly backends = new Map<string, Backend>();
  /** host name -> backend name */
  private readonly hostBackend = new Map<string, string>();
  private readonly notes: ImportNote[] = [];

  constructor(private readonly text: string) {}

  note(line: number, text: string): void {
    this.notes.push({ line, text });
    this.items.push({ line, note: text });
  }

  private backendFor(host: string, name: string, mode?: string): void {
    if (this.hostBackend.has(host)) return;
    let unique = name;
    for (let n = 2; this.backends.has(unique); n++) unique = `${name}-${n}`;
    this.backends.set(unique, mode ? { hosts: [host], mode } : { hosts: [host] });
    this.hostBackend.set(host, unique);
  }

  /** `<healthy-host>` in a URL of a JSON body -> `healthy-host.test`, with a backend of its own. */
  private mapUrlHost(url: string, line: number): string {
    const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/:?#]+)(.*)$/i.exec(url);
    if (!m) return url;
    let host = m[2]!;
    const placeholder = PLACEHOLDER.exec(host);
    if (placeholder && placeholder[0] === host) {
      const name = placeholder[1]!.toLowerCase();
      host = `${name}.test`;
      this.backendFor(host, name, UNHEALTHY_NAME.test(name) ? "down" : undefined);
    } else if (/^\d+\.\d+\.\d+\.\d+$/.test(host) || host.startsWith("[")) {
      if (!LOOPBACK.test(host)) throw new ImportError(line, `the body names ${url}, an address off loopback: use a host name (the importer maps names to loopback backends)`);
      this.note(line, `the body names ${url} by address: no mock backend answers there`);
    } else this.backendFor(host, host.split(".")[0]!);
    return m[1]! + host + m[3]!;
  }

  /** `body` is where the JSON text is in the report, so a host's own line can be named. */
  private mapJson(value: unknown, body: { text: string; offset: number }): unknown {
    if (typeof value === "string") {
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
      const at = body.text.indexOf(value);
      return this.mapUrlHost(value, lineAt(this.text, body.offset + Math.max(0, at)));
    }
    if (Array.isArray(value)) return value.map((v) => this.mapJson(v, body));
    if (value && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const host = typeof v === "string" && k === "host" ? PLACEHOLDER.exec(v) : null;
        out[k] = host && host[0] === v ? `${host[1]!.toLowerCase()}.test` : this.mapJson(v, body);
      }
      return out;
    }
    return value;
  }

  /** Instances without override.endpoint go to their provider's host: that needs a backend too. */
  private providerBackends(body: unknown): void {
    const instances = (body as { plugins?: Record<string, { instances?: InstanceLike[] } & InstanceLike> } | undefined)?.plugins;
    if (!instances || typeof instances !== "object") return;
    for (const conf of Object.values(instances)) {
      const list: InstanceLike[] = Array.isArray(conf?.instances) ? conf.instances : conf?.provider ? [conf] : [];
      for (const ins of list) {
        if ((ins.override as { endpoint?: unknown } | undefined)?.endpoint !== undefined) continue;
        const p = typeof ins.provider === "string" ? PROVIDERS[ins.provider] : undefined;
        const host = p?.getNode ? p.getNode(ins).host : p?.host;
        if (p && host) this.backendFor(host, p.name);
      }
    }
  }

  private body(req: CurlRequest): unknown {
    if (!req.body) return undefined;
    try {
      return JSON.parse(req.body.text);
    } catch (e) {
      const msg = (e as Error).message;
      const pos = /position (\d+)/.exec(msg);
      const at = req.body.offset + (pos ? Number(pos[1]) : 0);
      throw new ImportError(lineAt(this.text, at), `the curl body is not valid JSON: ${msg.replace(/ \(line \d+ column \d+\)$/, "")}`);
    }
  }

  curl(cmd: ShellCommand): void {
    let req: CurlRequest;
    try {
      req = parseCurl(cmd, this.text);
    } catch (e) {
      if (e instanceof NotTranslated) return this.note(e.line, `${e.message}: ${firstLine(this.text, cmd.line)}`);
      throw e;
    }
    const urlLine = lineAt(this.text, req.urlOffset);
    const raw = /^[a-z]+:\/\//i.test(req.url) ? req.url : `http://${req.url}`;
    let url: URL;
    try {
      url = new URL(raw.replace(/^([a-z]+:\/\/)<[^>]+>/i, "$1127.0.0.1"));
    } catch {
      throw new ImportError(urlLine, `curl URL ${req.url} is not a URL`);
    }
    if (!LOOPBACK.test(url.hostname)) throw new ImportError(urlLine, `curl URL ${req.url} is off loopback: the gateway must be 127.0.0.1, localhost, [::1] or a <placeholder>`);
    const path = url.pathname + url.search;
    for (const ignored of req.ignored) this.note(cmd.line, `curl ${ignored} ignored`);
    const body = this.body(req);
    const mapped = body === undefined ? undefined : this.mapJson(body, req.body!);
    if (url.pathname.startsWith("/apisix/admin/")) {
      if (!/^\/apisix\/admin\/routes(\/[^/]+)?\/?$/.test(url.pathname)) return this.note(cmd.line, `the reference gateway's Admin API serves routes only: ${req.method} ${path}`);
      this.providerBackends(mapped);
      const admin: Record<string, unknown> = { method: req.method, path: url.pathname };
      if (mapped !== undefined) admin.body = mapped;
      this.items.push({ line: cmd.line, step: { admin }, action: true });
      if (cmd.rest) this.rest(cmd);
      return;
    }
    if (url.port === "9090" || url.pathname.startsWith("/v1/")) return this.note(cmd.line, `control API calls are not translated (use a checkers assertion): ${req.method} ${path}`);
    const request: Record<string, unknown> = { method: req.method, path };
    const headers = Object.fromEntries(req.headers.filter(([k]) => !/^(host|content-length|x-api-key)$/i.test(k)));
    if (Object.keys(headers).length > 0) request.headers = headers;
    if (mapped !== undefined) request.body = mapped;
    this.items.push({ line: cmd.line, step: { request }, action: true });
    if (cmd.rest) this.rest(cmd);
  }

  /** `&& sleep 2` after a command is a wait; any other tail is noted. */
  private rest(cmd: ShellCommand): void {
    const sleep = /^&&\s*sleep\s+(\d+(?:\.\d+)?)(s|m)?\s*$/.exec(cmd.rest!);
    if (sleep) this.items.push({ line: cmd.endLine, step: { wait: duration(ms(Number(sleep[1]), sleep[2] ?? "s")) }, waitMs: ms(Number(sleep[1]), sleep[2] ?? "s") });
    else this.note(cmd.endLine, `not translated: ${cmd.rest}`);
  }

  sleep(cmd: ShellCommand): void {
    const arg = cmd.words[1]?.text ?? "";
    const m = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(arg);
    if (!m) return this.note(cmd.line, `not translated: ${firstLine(this.text, cmd.line)}`);
    const wait = ms(Number(m[1]), m[2] ?? "s");
    this.items.push({ line: cmd.line, step: { wait: duration(wait) }, waitMs: wait });
  }

  run(source: string): ImportResult {
    const text = this.text;
    const ranges: [number, number][] = [];
    const inCommand = (line: number): boolean => ranges.some(([a, b]) => line >= a && line <= b);
    for (const start of commandStarts(text, "curl")) {
      if (inCommand(lineAt(text, start))) continue;
      const cmd = readCommand(text, start);
      ranges.push([cmd.line, cmd.endLine]);
      this.curl(cmd);
    }
    if (ranges.length === 0) throw new ImportError(0, `no curl command in the report (read ${text.split(/\r?\n/).length} lines): nothing to import`);
    const firstCurl = Math.min(...ranges.map((r) => r[0]));
    for (const start of commandStarts(text, "sleep")) {
      const line = lineAt(text, start);
      if (inCommand(line)) continue;
      const cmd = readCommand(text, start);
      ranges.push([cmd.line, cmd.endLine]);
      this.sleep(cmd);
    }
    const quotes = findQuotedLines(text).filter((q) => q.line > firstCurl);
    const lastLine = quotes.length > 0 ? Math.max(...quotes.map((q) => q.line)) : Math.max(...ranges.map((r) => r[1]));
    const quoteLines = new Set(quotes.map((q) => q.line));
    const lines = text.split(/\r?\n/);
    // Prose between the first command and the last quote: stated waits, and commands not read.
    for (let n = firstCurl; n <= lastLine; n++) {
      if (inCommand(n) || quoteLines.has(n)) continue;
      const l = lines[n - 1]!;
      const wait = PROSE_WAIT.exec(l);
      if (wait) {
        const w = ms(Number(wait[1]), wait[2]!);
        this.items.push({ line: n, step: { wait: duration(w) }, waitMs: w });
      } else if (/\bwait\b/i.test(l)) this.note(n, `a wait without a duration, not translated: ${l.trim()}`);
    }
    for (const m of text.matchAll(COMMAND_LIKE)) {
      const n = lineAt(text, m.index!);
      if (n >= firstCurl && n <= lastLine && !inCommand(n)) this.note(n, `not translated: ${m[0].trim()}`);
    }
    return this.assemble(source, quotes);
  }

  private assemble(source: string, quotes: QuotedLine[]): ImportResult {
    const sigs = signatures(quotes);
    const firstQuote = quotes.length > 0 ? Math.min(...quotes.map((q) => q.line)) : Infinity;
    const ordered = [...this.items].sort((a, b) => a.line - b.line);
    const before = ordered.filter((i) => i.line < firstQuote);
    const after = ordered.filter((i) => i.line >= firstQuote);
    const lastAction = before.map((i) => i.action === true).lastIndexOf(true);
    const head = before.slice(0, lastAction + 1);
    const window = before.slice(lastAction + 1);
    const out: Item[] = [...head];
    const reproducesOn = this.reproducesOn(sigs);
    if (sigs.length > 0) {
      out.push({ line: head.at(-1)?.line ?? 0, step: { mark: ERRORS_MARK } });
      out.push(...window);
      let windowMs = window.reduce((s, i) => s + (i.waitMs ?? 0), 0);
      if (windowMs === 0) {
        windowMs = DEFAULT_WINDOW_MS;
        out.push({ line: firstQuote, step: { wait: duration(windowMs) } });
      }
      const atLeast = REPEATS.test(this.text) ? 2 : 1;
      for (const a of this.assertions(sigs, windowMs, atLeast)) out.push({ line: firstQuote, step: a });
    } else {
      out.push(...window);
      this.notes.push({ line: 0, text: "no error-log line quoted: the scenario has no bug assertion, so every version passes" });
    }
    out.push(...after);
    return { yaml: this.yaml(source, out, reproducesOn), notes: [...this.notes].sort((a, b) => a.line - b.line), reproducesOn };
  }

  /** One assertion per quoted message; messages quoted for different versions make one alternation. */
  private assertions(sigs: LogSignature[], windowMs: number, atLeast: number): StepDoc[] {
    const groups: { level: string; pattern: string; lines: number[] }[] = [];
    for (const level of [...new Set(sigs.map((s) => s.level))]) {
      const same = sigs.filter((s) => s.level === level);
      const versions = same.flatMap((s) => s.versions);
      const perVersion = same.length > 1 && same.every((s) => s.versions.length > 0) && new Set(versions).size === versions.length;
      if (perVersion) groups.push({ level, pattern: same.map((s) => `(?:${s.pattern})`).join("|"), lines: same.flatMap((s) => s.lines) });
      else groups.push(...same);
    }
    const bug = groups.map((g) => ({
      assert: {
        bug: true,
        note: `the error line${g.lines.length > 1 ? "s" : ""} quoted at line${g.lines.length > 1 ? "s" : ""} ${g.lines.join(", ")} of the report${atLeast > 1 ? ", repeating" : ""}`,
        log: { matches: g.pattern, level: g.level, since: ERRORS_MARK, within: duration(windowMs), atLeast },
      },
    }));
    const none = { assert: { when: "passes", note: "a version without the bug logs none of these lines", log: { matches: groups.map((g) => g.pattern).join("|"), absent: true } } };
    return [...bug, none];
  }

  private reproducesOn(sigs: LogSignature[]): string[] {
    const known = new Set(PROFILES.map((p) => p.name));
    const named = new Set(sigs.flatMap((s) => s.versions));
    for (const m of this.text.matchAll(REPRODUCES_ON)) for (const v of m[0].matchAll(VERSION)) named.add(v[1]!);
    const unknown = [...named].filter((v) => !known.has(v));
    if (unknown.length > 0) this.notes.push({ line: 0, text: `versions the harness has no profile for: ${unknown.join(", ")}` });
    return [...named].filter((v) => known.has(v)).sort();
  }

  private yaml(source: string, items: Item[], reproducesOn: string[]): string {
    const t = title(this.text);
    const expect: Record<string, string> = { default: "passes" };
    for (const v of reproducesOn) expect[v] = "reproduces";
    const steps = items.filter((i) => i.step);
    const doc: Record<string, unknown> = { name: t.name };
    if (t.issue) doc.issue = t.issue;
    doc.tags = ["imported"];
    doc.description = `Imported from ${source} by harness import. Comments name the report's lines; review before adding it to a suite.\n`;
    if (this.backends.size > 0) doc.backends = Object.fromEntries(this.backends);
    doc.steps = steps.map((i) => i.step);
    doc.expect = expect;
    const d = new Document(doc, { aliasDuplicateObjects: false });
    // Small maps and lists on one line, as the catalogue writes them; big bodies stay in blocks.
    visit(d, {
      Node(_key, node) {
        if (isCollection(node) && JSON.stringify(node.toJSON()).length <= 72) node.flow = true;
      },
    });
    const seq = d.get("steps", true);
    // Each step starts its own block, as in the catalogue.
    if (isSeq(seq)) for (const node of seq.items) if (isCollection(node)) node.flow = false;
    // Notes go above the first step that comes after them in the report.
    const pending = items.filter((i) => i.note !== undefined);
    if (isSeq(seq)) {
      seq.items.forEach((node, k) => {
        const here = pending.filter((p) => p.line <= steps[k]!.line && !(p as { used?: boolean }).used);
        if (here.length === 0) return;
        for (const p of here) (p as { used?: boolean }).used = true;
        (node as Node).commentBefore = here.map((p) => ` line ${p.line}: ${p.note}`).join("\n");
      });
    }
    const left = [...pending.filter((p) => !(p as { used?: boolean }).used).map((p) => ` line ${p.line}: ${p.note}`), ...this.notes.filter((n) => n.line === 0).map((n) => ` ${n.text}`)];
    if (left.length > 0) d.comment = left.join("\n");
    d.commentBefore = ` Imported by harness import from ${source}.`;
    return d.toString({ lineWidth: 0, flowCollectionPadding: false });
  }
}

export function importReport(text: string, source: string): ImportResult {
  return new Importer(text.replace(/\r\n/g, "\n")).run(source);
}
