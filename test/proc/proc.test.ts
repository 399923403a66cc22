/**
 * harness/proc: children that cannot outlive their owner, for any executable. The owner is a real
 * separate process (test/helpers/owner.ts) so it can be killed with SIGKILL, exit abruptly or
 * crash; the checks look at every process of the child's group, zombies counted as dead.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { spawnOwned, sweepDeadOwners } from "../../harness/proc/index.ts";
import { alive, descendants, eventually } from "../helpers/processes.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Living processes in a process group. */
function groupMembers(pgid: number): number[] {
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      try {
        const s = readFileSync(`/proc/${pid}/stat`, "utf8");
        const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
        return Number(f[2]) === pgid && f[0] !== "Z";
      } catch {
        return false;
      }
    });
}

async function owner(mode: "wait" | "exit" | "throw") {
  const child = execa("node", ["bin/run-ts.js", "test/helpers/owner.ts", mode], { cwd: ROOT, reject: false });
  const info = await new Promise<{ pid: number; pgid: number; dir: string; reaper: number }>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line));
    });
    void child.then((r) => reject(new Error(`owner ended early: ${r.stderr}`)));
  });
  return { child, info };
}

describe("spawnOwned", () => {
  it("stop() ends the whole group: a wrapper shell that does not exec, and what it started", async () => {
    const p = spawnOwned("sh", ["-c", "sleep 300 & wait"], { stdio: "ignore" });
    expect(await eventually(() => descendants(p.pid!).length === 1, 3000)).toBe(true);
    const [grandchild] = descendants(p.pid!);
    expect(grandchild!.comm).toBe("sleep");
    const status = await p.stop();
    expect(status.signal ?? status.code).not.toBeUndefined();
    expect(alive(grandchild!.pid)).toBe(false);
    expect(groupMembers(p.pid!)).toEqual([]);
  });

  it("when the child exits on its own, what it left in its group is stopped too", async () => {
    const p = spawnOwned("sh", ["-c", "sleep 300 & echo $!; exit 0"], { stdio: ["ignore", "pipe", "ignore"] });
    const leftover = await new Promise<number>((r) => p.child.stdout!.once("data", (c: Buffer) => r(Number(c.toString().trim()))));
    expect((await p.exited).code).toBe(0);
    expect(await eventually(() => !alive(leftover), 3000)).toBe(true);
  });

  it("reports an executable that cannot be started instead of throwing", async () => {
    const p = spawnOwned("/nonexistent/luajit", ["-v"]);
    const status = await p.exited;
    expect(status.error?.message).toMatch(/ENOENT/);
    expect(p.running).toBe(false);
    await p.stop();
  });
});

describe("nothing outlives its owner", () => {
  it("kill -9 of the owner: within 2 s its children's groups are gone and its temp dir is deleted (parent-death watch)", async () => {
    const { child, info } = await owner("wait");
    const before = groupMembers(info.pgid);
    expect(before.length).toBe(2); // the shell and its sleep
    expect(existsSync(info.dir)).toBe(true);
    process.kill(info.pid, "SIGKILL");
    await child;
    expect(await eventually(() => groupMembers(info.pgid).length === 0 && !existsSync(info.dir), 2000)).toBe(true);
    expect(await eventually(() => !alive(info.reaper), 2000)).toBe(true);
  });

  it("process.exit and an uncaught error: the exit handler stops children and deletes dirs at once", async () => {
    for (const mode of ["exit", "throw"] as const) {
      const { child, info } = await owner(mode);
      const res = await child;
      expect(res.exitCode, mode).toBe(mode === "exit" ? 0 : 1);
      // SIGKILLed synchronously on exit: gone without waiting for the reaper's grace period.
      expect(await eventually(() => groupMembers(info.pgid).length === 0 && !existsSync(info.dir), 500), mode).toBe(true);
    }
  });
});

describe("sweepDeadOwners", () => {
  const base = mkdtempSync(join(tmpdir(), "sweep-test-"));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it("deletes harness-<kind>-<pid>-XXXXXX dirs whose owner is gone, and nothing else", async () => {
    const gone = execa("true");
    const deadPid = gone.pid!;
    await gone;
    const names = [`harness-etcd-${deadPid}-abcDEF`, `harness-serve-${process.pid}-ghiJKL`, "harness-notes", `harness-etcd-${deadPid}`, "other-dir"];
    for (const n of names) mkdirSync(join(base, n, "data"), { recursive: true });
    const removed = sweepDeadOwners(base);
    expect(removed).toEqual([join(base, `harness-etcd-${deadPid}-abcDEF`)]);
    expect(readdirSync(base).sort()).toEqual(names.slice(1).sort());
  });
});
