import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { parse } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { ImportError, importReport } from "../../harness/importer/import.ts";
import { findQuotedLines, signatures } from "../../harness/importer/log-lines.ts";
import { loadScenario } from "../../harness/runner/load.ts";
import { luaUnavailable } from "../helpers/lua.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const REPORT = join(ROOT, "../shared/bug-report-13101.txt");
const dir = mkdtempSync(join(tmpdir(), "harness-import-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Import a report given inline; returns the parsed scenario and the notes. */
function imported(text: string) {
  const r = importReport(text, "report.md");
  return { ...r, doc: parse(r.yaml) as { steps: Record<string, Record<string, unknown>>[]; backends?: Record<string, { hosts: string[]; mode?: string }>; expect: Record<string, string> } };
}

function importError(text: string): ImportError {
  try {
    importReport(text, "report.md");
  } catch (e) {
    if (e instanceof ImportError) return e;
    throw e;
  }
  throw new Error("no ImportError");
}

const PUT = (body: string) => `curl http://127.0.0.1:9180/apisix/admin/routes/1 -H 'X-API-KEY: k' -X PUT -d '${body}'`;
const ROUTE = '{"uri":"/ai/*","plugins":{"ai-proxy-multi":{"instances":[{"name":"a","provider":"openai-compatible","weight":1,"override":{"endpoint":"http://<llm-host>:8080/v1/chat/completions"},"checks":{"active":{"http_path":"/health"}}}]}}}';

describe("harness import of apache/apisix#13101 (../shared/bug-report-13101.txt)", () => {
  it("gives a scenario that reproduces on 3.15.0 and 3.16.0 and not on 3.17.0 and 3.18.0, nothing edited (real etcd, all four releases at once)", async () => {
    const out = join(dir, "13101.yaml");
    const res = await execa("node", ["bin/harness.js", "import", REPORT, "--run", "--out", out], { cwd: ROOT, reject: false, env: { GITHUB_STEP_SUMMARY: "" } });
    expect(res.exitCode, res.stderr).toBe(0);
    const row = res.stdout.split("\n").find((l) => l.startsWith("| ai-proxy-multi health checker creation"));
    expect(row).toBe("| ai-proxy-multi health checker creation always fails in timer context due to missing _dns_value (apache/apisix#13101) | ✅ reproduces | ✅ reproduces | ✅ passes | ✅ passes |");
    expect(res.stdout).toContain("**4 passed, 0 failed**");
    const scenario = loadScenario(out);
    expect(scenario.expect).toEqual({ default: "passes", "3.15.0": "reproduces", "3.16.0": "reproduces" });
    expect(scenario.steps.map((s) => s.kind)).toEqual(["admin", "request", "wait", "admin", "mark", "wait", "assert", "assert"]);
  });

  const noLua = luaUnavailable();
  it.skipIf(noLua)(`the same on the lua engine (APISIX's own Lua at each release)${noLua ? ` [skipped: ${noLua}]` : ""}`, async () => {
    const out = join(dir, "13101-lua.yaml");
    const res = await execa("node", ["bin/harness.js", "import", REPORT, "--run", "--engine", "lua", "--out", out], { cwd: ROOT, reject: false, env: { GITHUB_STEP_SUMMARY: "" } });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toContain("lua engine");
    const row = res.stdout.split("\n").find((l) => l.startsWith("| ai-proxy-multi health checker creation"));
    expect(row).toMatch(/\| ✅ reproduces \| ✅ reproduces \| ✅ passes \| ✅ passes \|$/);
  });

  it("translates the report's steps: the route PUT with its body, the chat request, the stated wait, the PATCH", () => {
    const { doc, notes } = imported(readFileSync(REPORT, "utf8"));
    expect(notes).toEqual([]);
    const [put, request, wait, patch] = doc.steps;
    expect(put!.admin).toMatchObject({ method: "PUT", path: "/apisix/admin/routes/1" });
    const instances = (put!.admin!.body as { plugins: { "ai-proxy-multi": { instances: { name: string; endpoint: string }[] } } }).plugins["ai-proxy-multi"].instances;
    expect(instances.map((i) => [i.name, i.endpoint])).toEqual([
      ["healthy-backend", "http://healthy-host.test:80/v1"],
      ["unhealthy-backend", "http://unhealthy-host.test:80/v1"],
    ]);
    expect(request!.request).toEqual({ method: "POST", path: "/ai/chat/completions", headers: { "Content-Type": "application/json" }, body: { model: "gpt-4", messages: [{ role: "user", content: "hello" }] } });
    expect(wait).toEqual({ wait: "2s" });
    expect(patch!.admin).toEqual({ method: "PATCH", path: "/apisix/admin/routes/1", body: { desc: "trigger config refresh" } });
    // Placeholders become loopback backends (the "unhealthy" one down); the instances' provider host gets one too.
    expect(doc.backends).toEqual({ "healthy-host": { hosts: ["healthy-host.test"] }, "unhealthy-host": { hosts: ["unhealthy-host.test"], mode: "down" }, openai: { hosts: ["api.openai.com"] } });
  });

  it("the quoted lines of 3.15.0 (:292/:242) and 3.16.0 (:288/:238) make one pattern with the line numbers generalised", () => {
    const quotes = findQuotedLines(readFileSync(REPORT, "utf8"));
    expect(quotes.map((q) => [q.line, q.level, q.version])).toEqual([
      [90, "error", "3.15.0"],
      [95, "error", "3.16.0"],
    ]);
    const [sig] = signatures(quotes);
    expect(sig!.versions).toEqual(["3.15.0", "3.16.0"]);
    const re = new RegExp(sig!.pattern);
    for (const [outer, inner] of [
      [292, 242],
      [288, 238],
    ]) {
      expect(re.test(`2026/01/01 00:00:03 [error] 4242#4242: *1 [lua] healthcheck_manager.lua:${outer}: failed to run timer_working_pool_check: /usr/local/apisix/apisix/healthcheck_manager.lua:${inner}: attempt to index local 'upstream' (a nil value), context: ngx.timer`)).toBe(true);
    }
    expect(re.test("[error] healthcheck_manager.lua:274: failed to run timer_create_checker: healthcheck_manager.lua:180: attempt to index local 'upstream' (a nil value), context: ngx.timer")).toBe(false);
  });
});

describe("quoted error lines", () => {
  it("one version quoted: its line numbers are kept; the nginx prefix (time, pid, connection) is dropped", () => {
    const [sig] = signatures(findQuotedLines("On 3.17.0:\n2026/03/18 00:00:02 [error] 1#1: *6 [lua] healthcheck_manager.lua:274: failed to run timer_create_checker: boom, context: ngx.timer\n"));
    expect(sig).toEqual({ level: "error", pattern: "(?:\\S*/)?healthcheck_manager\\.lua:274: failed to run timer_create_checker: boom, context: ngx\\.timer", versions: ["3.17.0"], lines: [2] });
  });

  it("different messages on different versions become one alternation; warn lines keep their level", () => {
    const text = [PUT(ROUTE), "", "On 3.15.0:", "[error] a.lua:1: crash one", "", "On 3.16.0:", "[error] b.lua:2: crash two", "", "[warn] c.lua:3: something else", ""].join("\n");
    const asserts = imported(text).doc.steps.filter((s) => s.assert).map((s) => s.assert as { bug?: boolean; when?: string; log: { matches: string; level?: string } });
    expect(asserts.map((a) => [a.bug ?? false, a.log.level, a.log.matches])).toEqual([
      [true, "error", "(?:(?:\\S*/)?a\\.lua:1: crash one)|(?:(?:\\S*/)?b\\.lua:2: crash two)"],
      [true, "warn", "(?:\\S*/)?c\\.lua:3: something else"],
      [false, undefined, "(?:(?:\\S*/)?a\\.lua:1: crash one)|(?:(?:\\S*/)?b\\.lua:2: crash two)|(?:\\S*/)?c\\.lua:3: something else"],
    ]);
  });
});

describe("commands", () => {
  it("line continuations, -X, -H, --data-raw and `sleep N`; the mark goes after the last command before the quoted errors, a stated wait after it is the window", () => {
    const text = [
      "Steps:",
      "```sh",
      "$ curl -s http://localhost:9180/apisix/admin/routes/1 \\",
      "    -H 'X-API-KEY: edd1' \\",
      `    -X PUT --data-raw '${ROUTE}'`,
      "sleep 1.5",
      'curl -X POST "http://127.0.0.1:9080/ai/chat/completions" -H "Authorization: Bearer t" -d \'{"messages":[]}\' && sleep 2',
      "```",
      "Then wait for 5 seconds and look at the log:",
      "    [error] healthcheck_manager.lua:99: it broke",
      "",
    ].join("\n");
    const { doc, notes } = imported(text);
    expect(notes).toEqual([]);
    // The `&& sleep 2` after the last request and the stated 5 s both come after it: the errors' window is 7 s.
    expect(doc.steps.map((s) => Object.keys(s)[0])).toEqual(["admin", "wait", "request", "mark", "wait", "wait", "assert", "assert"]);
    expect(doc.steps[1]).toEqual({ wait: "1500ms" });
    expect(doc.steps[2]!.request).toEqual({ method: "POST", path: "/ai/chat/completions", headers: { Authorization: "Bearer t" }, body: { messages: [] } });
    expect(doc.steps.slice(4, 6)).toEqual([{ wait: "2s" }, { wait: "5s" }]);
    expect((doc.steps[6]!.assert as { log: { within: string; atLeast: number } }).log).toMatchObject({ within: "7s", atLeast: 1 });
    expect(doc.backends).toEqual({ "llm-host": { hosts: ["llm-host.test"] } });
  });

  it("what is not translated stays as a comment naming the report's line, and is listed", () => {
    const text = [
      "# checkers crash",
      "docker compose up -d",
      PUT(ROUTE),
      "docker compose restart apisix",
      "curl http://127.0.0.1:9090/v1/healthcheck",
      `curl http://127.0.0.1:9180/apisix/admin/routes/2 -X PUT -d "$(cat route.json)"`,
      "curl http://127.0.0.1:9180/apisix/admin/upstreams/1 -X PUT -d '{}'",
      "curl http://127.0.0.1:9080/ai -d '{}' | jq .",
      "wait a while",
      "[error] x.lua:1: boom",
    ].join("\n");
    const r = imported(text);
    expect(r.notes.map((n) => n.line)).toEqual([4, 5, 6, 7, 8, 9]);
    expect(r.notes[0]!.text).toBe("not translated: docker compose restart apisix");
    expect(r.notes[1]!.text).toContain("control API calls are not translated");
    expect(r.notes[2]!.text).toContain("shell expansion");
    expect(r.notes[3]!.text).toContain("Admin API serves routes only");
    expect(r.notes[4]!.text).toBe("not translated: | jq .");
    expect(r.notes[5]!.text).toContain("a wait without a duration");
    expect(r.yaml).toContain("# line 4: not translated: docker compose restart apisix");
    expect(r.yaml).toContain("# line 9: a wait without a duration, not translated: wait a while");
    // Line 2 comes before the first curl: not part of the steps.
    expect(r.yaml).not.toContain("docker compose up");
    // The file still loads.
    const file = join(dir, "notes.yaml");
    writeFileSync(file, r.yaml);
    expect(loadScenario(file).steps.filter((s) => s.kind === "admin")).toHaveLength(1);
  });
});

describe("bad input: an ImportError naming the report's line", () => {
  it("no curl command", () => {
    expect(importError("Just a description.\nNo commands here.\n").message).toBe("no curl command in the report (read 3 lines): nothing to import");
  });

  it("a JSON body that does not parse: the line of the mistake", () => {
    const e = importError(["intro", "curl http://127.0.0.1:9180/apisix/admin/routes/1 -X PUT -d '", "{", '  "uri": "/ai/*",', '  "plugins": {,}', "}'"].join("\n"));
    expect(e.line).toBe(5);
    expect(e.message).toMatch(/^the curl body is not valid JSON: /);
  });

  it("a curl URL off loopback, and a body naming an address off loopback", () => {
    const e = importError("x\ncurl http://apisix.example.com:9180/apisix/admin/routes/1 -X PUT -d '{}'\n");
    expect([e.line, e.message]).toEqual([2, "curl URL http://apisix.example.com:9180/apisix/admin/routes/1 is off loopback: the gateway must be 127.0.0.1, localhost, [::1] or a <placeholder>"]);
    const f = importError(`curl http://127.0.0.1:9180/apisix/admin/routes/1 -X PUT -d '\n{"uri":"/a","plugins":{"ai-proxy-multi":{"instances":[{"override":{"endpoint":"http://10.1.2.3/v1"}}]}}}'\n`);
    expect(f.line).toBe(2);
    expect(f.message).toContain("http://10.1.2.3/v1, an address off loopback");
  });

  it("the CLI says it in one line with the file and line, exit 2", async () => {
    const file = join(dir, "bad.md");
    writeFileSync(file, "# bug\n\n```\ncurl http://127.0.0.1:9180/apisix/admin/routes/1 -X PUT -d '{\"uri\": }'\n```\n");
    const res = await execa("node", ["bin/harness.js", "import", file], { cwd: ROOT, reject: false });
    expect(res.exitCode).toBe(2);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(res.stderr).toMatch(new RegExp(`^harness: ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:4: the curl body is not valid JSON: `));
    expect(res.stdout).toBe("");
  });
});
