import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { luaUnavailable } from "../helpers/lua.ts";
import { makePatch } from "../helpers/patch.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const skip = luaUnavailable();

/** LuaJIT workers whose environment carries this hash seed (the seed is this file's own). */
const SEED = "730121";
function ourWorkers(): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      if (!readFileSync(`/proc/${d}/comm`, "utf8").startsWith("luajit")) continue;
      if (readFileSync(`/proc/${d}/environ`, "utf8").split("\0").includes(`HARNESS_HASH_SEED=${SEED}`)) out.push(Number(d));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

const SCENARIO = `
name: one request
backends:
  openai: {hosts: [api.openai.com]}
steps:
  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: 13101/route.json}
  - request: {path: /ai/chat/completions, fixture: 13101/chat-request.json}
  - wait: 1s
expect:
  default: passes
`;

describe.skipIf(skip)(`faults of the lua engine${skip ? ` (skipped: ${skip})` : ""}`, () => {
  let dir: string;
  let scenario: string;
  const access = "function _M.access(conf, ctx)\n";
  const patch = (name: string, body: string) => makePatch(dir, name, "3.18.0", "apisix/plugins/ai-proxy-multi.lua", (t) => t.replace(access, `${access}    ${body}\n`));
  const harness = (args: string[], env: Record<string, string> = {}) =>
    execa(process.execPath, ["bin/harness.js", ...args], { cwd: ROOT, reject: false, env: { ...env }, extendEnv: true, timeout: 60_000 });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "harness-test-faults-"));
    scenario = join(dir, "one-request.yaml");
    writeFileSync(scenario, SCENARIO);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("no luajit on PATH: one line with the install command, exit 2", async () => {
    const bin = join(dir, "bin");
    rmSync(bin, { recursive: true, force: true });
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, "node"));
    const res = await harness(["repro", "--engine", "lua", "--store", "memory"], { PATH: bin });
    expect(res.exitCode).toBe(2);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(res.stderr).toMatch(/^harness: --engine lua needs LuaJIT .* apt-get install -y luajit2 lua-cjson lua-dkjson lua-resty-lrucache$/);
  });

  it("a Lua error in a request fails the run with the Lua traceback in the report", async () => {
    const diff = patch("raise", 'error("boom from a test")');
    const out = join(dir, "raise-out");
    const res = await harness(["run", scenario, "--engine", "lua", "--store", "memory", "--versions", `3.18.0+${diff}`, "--reporter", "console,json", "--out", out]);
    expect(res.exitCode).toBe(1);
    expect(res.stdout).toContain("ai-proxy-multi.lua:");
    const run = (JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as { runs: { outcome: string; failure: { message: string } }[] }).runs[0]!;
    expect(run.outcome).toBe("error");
    expect(run.failure.message).toMatch(/Lua error in a request: \/usr\/local\/apisix\/apisix\/plugins\/ai-proxy-multi\.lua:\d+: boom from a test\nstack traceback:\n/);
  });

  it("a hung worker is killed after the command timeout; the run fails with it and the next run works", async () => {
    const diff = patch("hang", "while true do end");
    const res = await harness(["run", scenario, "--engine", "lua", "--store", "memory", "--seed", SEED, "--concurrency", "1", "--versions", `3.18.0+${diff},3.18.0`], { HARNESS_LUA_COMMAND_TIMEOUT_MS: "1500" });
    expect(res.exitCode).toBe(1);
    expect(res.stdout).toMatch(/FAIL\s+3\.18\.0\+.*hang\.diff.*did not finish "request" within 1500 ms and was killed/);
    expect(res.stdout).toMatch(/ok\s+3\.18\.0\s+passes/);
    expect(ourWorkers()).toEqual([]);
  });

  it("a worker that dies fails the run with its exit and stderr", async () => {
    const diff = patch("die", 'io.stderr:write("dying on purpose\\n"); os.exit(3)');
    const res = await harness(["run", scenario, "--engine", "lua", "--store", "memory", "--versions", `3.18.0+${diff}`]);
    expect(res.exitCode).toBe(1);
    expect(res.stdout).toMatch(/LuaJIT worker exited \(code 3\) while running "request"; stderr: dying on purpose/);
  });

  it("a module the shim lacks names the module and the version", async () => {
    const diff = makePatch(dir, "needs", "3.18.0", "apisix/plugins/ai-proxy-multi.lua", (t) => t.replace('local core = require("apisix.core")', 'local core = require("apisix.core")\nlocal missing = require("resty.not-shimmed")'));
    const res = await harness(["run", scenario, "--engine", "lua", "--store", "memory", "--versions", `3.18.0+${diff}`]);
    expect(res.exitCode).toBe(1);
    expect(res.stdout).toMatch(/module 'resty\.not-shimmed' not found: neither APISIX 3\.18\.0\+.*needs\.diff nor the harness's stubs provide it/);
  });

  it("closing the idle workers waits for them to exit (the process does not end with the close unsettled)", async () => {
    // The idle successor's child and pipes are unreferenced; Node exits 13 when a top-level
    // await is left with nothing that keeps the loop alive.
    const res = await execa(process.execPath, ["bin/run-ts.js", "test/helpers/close-idle-workers.ts"], { cwd: ROOT, reject: false, timeout: 30_000 });
    expect([res.exitCode, res.stdout], res.stderr).toEqual([0, "closed"]);
  });

  it("Ctrl-C during a run leaves no luajit process and no temporary tree", async () => {
    const long = join(dir, "long.yaml");
    writeFileSync(long, SCENARIO.replace("wait: 1s", "wait: 600s"));
    const before = readdirSync(tmpdir()).filter((d) => d.startsWith("harness-lua-"));
    const diff = patch("slow", "-- a patched tree, so the run has a temporary copy");
    const child = harness(["run", long, "--engine", "lua", "--store", "memory", "--seed", SEED, "--versions", `3.18.0+${diff}`]);
    for (let i = 0; i < 100 && ourWorkers().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(ourWorkers().length).toBeGreaterThan(0);
    child.kill("SIGINT");
    const res = await child;
    expect(res.exitCode).toBe(130);
    for (let i = 0; i < 40 && ourWorkers().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(ourWorkers()).toEqual([]);
    expect(readdirSync(tmpdir()).filter((d) => d.startsWith("harness-lua-") && !before.includes(d))).toEqual([]);
  });
});
