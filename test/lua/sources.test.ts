import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRepro } from "../../harness/cli/repro.ts";
import { UsageError } from "../../harness/errors.ts";
import { closeIdleWorkers } from "../../harness/gateway/lua/lua-worker.ts";
import { resolveLuaTree } from "../../harness/gateway/lua/sources.ts";
import { luaUnavailable, PATCHES, SOURCES } from "../helpers/lua.ts";
import { makePatch } from "../helpers/patch.ts";

const skip = luaUnavailable();
afterAll(closeIdleWorkers);

/**
 * A git checkout of APISIX built from the shared trees: tag 3.15.0, then 3.16.0 at HEAD, and in
 * the working tree the 3.18.0 fix (13592.diff) applied but not committed.
 */
describe.skipIf(skip)(`where the Lua comes from${skip ? ` (skipped: ${skip})` : ""}`, () => {
  let repo: string;
  const git = (...args: string[]) => execFileSync("git", ["-C", repo, ...args], { encoding: "utf8", env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" } });

  beforeAll(() => {
    repo = mkdtempSync(join(tmpdir(), "harness-test-apisix-git-"));
    git("init", "-q");
    for (const v of ["3.15.0", "3.16.0"]) {
      rmSync(join(repo, "apisix"), { recursive: true, force: true });
      cpSync(join(SOURCES.apisix, v, "apisix"), join(repo, "apisix"), { recursive: true });
      git("add", "-A");
      git("commit", "-qm", v);
      git("tag", v);
    }
    execFileSync("patch", ["-p1", "-s", "-d", repo, "-i", join(PATCHES, "13592.diff")]);
  });
  afterAll(() => rmSync(repo, { recursive: true, force: true }));

  it("reads refs with git (nothing in the checkout changes) and runs the working tree as it is", async () => {
    const statusBefore = git("status", "--porcelain");
    const record = await runRepro({ versions: "3.15.0,HEAD,worktree", store: "memory", engine: { engine: "lua", workers: "1", apisix: repo, luaDeps: SOURCES.luaDeps }, log: () => undefined });
    const row = (v: string) => record.results.find((r) => r.version === v)!;
    expect(row("3.15.0").firstErrorLine).toContain("healthcheck_manager.lua:292: failed to run timer_working_pool_check: /usr/local/apisix/apisix/healthcheck_manager.lua:242:");
    expect(row("3.15.0").ran).toMatch(/git 3\.15\.0 \([0-9a-f]{9}\)/);
    expect(row("HEAD").firstErrorLine).toContain("healthcheck_manager.lua:288: failed to run timer_working_pool_check: /usr/local/apisix/apisix/healthcheck_manager.lua:238:");
    expect(row("worktree")).toMatchObject({ verdict: "NOT REPRODUCED", failures: 0 });
    expect(row("worktree").ran).toContain(`working tree of ${repo}`);
    expect(git("status", "--porcelain")).toBe(statusBefore);
  });

  it("a folder of <version>/apisix trees: each version is a folder", () => {
    const tree = resolveLuaTree("3.17.0", SOURCES);
    expect(tree.apisixRoot).toBe(join(SOURCES.apisix, "3.17.0"));
    expect(tree.healthcheck.version).toBe("v3.2.1");
    const newest = resolveLuaTree("3.18.0", SOURCES);
    // 3.18.0 pins 3.2.3, which the shared libraries lack: the nearest lower one, said so.
    expect(newest.healthcheck).toEqual({ version: "v3.2.2", note: expect.stringContaining("3.2.3 is pinned") });
  });

  it("an unknown version or ref is one line naming it and where it looked", () => {
    expect(() => resolveLuaTree("3.99.0", SOURCES)).toThrow(UsageError);
    expect(() => resolveLuaTree("3.99.0", SOURCES)).toThrow(/unknown version "3\.99\.0": no .*3\.99\.0\/apisix \(found: 3\.15\.0, 3\.16\.0, 3\.17\.0, 3\.18\.0\)/);
    expect(() => resolveLuaTree("no-such-tag", { ...SOURCES, apisix: repo })).toThrow(/unknown version "no-such-tag": no such tag, branch or commit in the git checkout/);
    expect(() => resolveLuaTree("worktree", SOURCES)).toThrow(/"worktree" needs --apisix to be a git checkout/);
  });

  it("a patch that does not apply names the file and the hunk", () => {
    const dir = mkdtempSync(join(tmpdir(), "harness-test-patch-"));
    try {
      // A hunk written for code only 3.18.0's manager has, applied to 3.15.0.
      const diff = makePatch(dir, "late", "3.18.0", "apisix/healthcheck_manager.lua", (t) => t.replace("local function sync_checker_targets(checker, up_conf)", "local function sync_checker_targets(checker, up_conf) -- changed"));
      expect(() => resolveLuaTree(`3.15.0+${diff}`, SOURCES)).toThrow(/^3\.15\.0\+.*late\.diff: late\.diff does not apply: hunk #1 of apisix\/healthcheck_manager\.lua \(at line \d+\)$/);
      expect(() => resolveLuaTree(`3.15.0+${dir}/missing.diff`, SOURCES)).toThrow(/no patch file .*missing\.diff/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
