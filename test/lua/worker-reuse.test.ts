import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { luaVersions } from "../../harness/gateway/lua/lua-engine.ts";
import { closeIdleWorkers } from "../../harness/gateway/lua/lua-worker.ts";
import { REPRO_BACKENDS, reproduce13101 } from "../../harness/repro/repro-13101.ts";
import { InprocTarget } from "../../harness/targets/inproc.ts";
import { luaUnavailable, SOURCES } from "../helpers/lua.ts";
import { stopAllOwned } from "../../harness/proc/index.ts";
import { alive, descendants, eventually, groupMembers } from "../helpers/processes.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const skip = luaUnavailable();

/** The LuaJIT processes this test process started: masters and the workers they forked. */
function luajits(): { pid: number; ppid: number }[] {
  const mine = descendants(process.pid).filter((p) => p.comm.startsWith("luajit"));
  return mine.map((p) => ({ pid: p.pid, ppid: Number(/^\S+ \(.*\) \S (\d+)/.exec(readStat(p.pid))?.[1] ?? 0) }));
}

function readStat(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return "";
  }
}

async function run13101(): Promise<string> {
  const [version] = luaVersions(["3.15.0"], SOURCES);
  const target = await InprocTarget.create({ version: version!, store: new MemoryStore(), backends: REPRO_BACKENDS, network: "simulated", seed: 4711 });
  try {
    return (await reproduce13101(target)).verdict;
  } finally {
    await target.close();
  }
}

describe.skipIf(skip)(`lua workers of a reused master${skip ? ` (skipped: ${skip})` : ""}`, () => {
  afterEach(closeIdleWorkers);

  it("the second run's master forks the next worker ahead, and closing the masters ends it and every worker", async () => {
    expect(await run13101()).toBe("REPRODUCED");
    expect(await run13101()).toBe("REPRODUCED");
    // The master and, forked by it, the worker for a third run (the two runs' workers have exited).
    const settled = await eventually(() => {
      const ps = luajits();
      return ps.length === 2 && ps.some((p) => ps.some((q) => q.ppid === p.pid));
    }, 3000);
    expect(settled, JSON.stringify(luajits())).toBe(true);
    await closeIdleWorkers();
    expect(luajits()).toEqual([]);
  });

  it("a worker forked ahead that dies while it waits is replaced: the next run still works", async () => {
    expect(await run13101()).toBe("REPRODUCED");
    expect(await run13101()).toBe("REPRODUCED");
    let spare: number | undefined;
    await eventually(() => {
      const ps = luajits();
      spare = ps.find((p) => ps.some((q) => q.pid === p.ppid))?.pid;
      return ps.length === 2 && spare !== undefined;
    }, 3000);
    expect(spare).toBeDefined();
    process.kill(spare!, "SIGKILL");
    // Dead (a zombie until its master reaps it) before the next run takes a worker.
    expect(await eventually(() => !alive(spare!), 3000)).toBe(true);
    expect(await run13101()).toBe("REPRODUCED");
    expect(await run13101()).toBe("REPRODUCED");
  });

  it("a master is not closed to make room while it forks: two workers still start when only one master may stay booted", async () => {
    // Each two-worker run takes its worker-0 master, then boots or takes its worker-1 master,
    // which makes room by closing idle masters: the worker-0 master must not count as idle.
    const res = await execa(process.execPath, ["bin/harness.js", "run", "scenarios/13101-workers-crash-loop.yaml", "scenarios/13101-backports.yaml", "--engine", "lua", "--versions", "all", "--store", "memory", "--concurrency", "1"], {
      cwd: ROOT,
      reject: false,
      env: { HARNESS_LUA_MASTERS: "1" },
      timeout: 45_000,
    });
    expect(res.exitCode, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/\b8 passed, 0 failed/);
  }, 60_000);

  it("a command's last stop lets the masters reap their workers: no luajit is left for init to collect, not even a zombie", async () => {
    expect(await run13101()).toBe("REPRODUCED");
    expect(await run13101()).toBe("REPRODUCED");
    // Each master leads its own process group, with the workers it forks.
    const masters = luajits().filter((p) => p.ppid === process.pid || !luajits().some((q) => q.pid === p.ppid));
    expect(masters.length).toBeGreaterThan(0);
    await stopAllOwned();
    for (const m of masters) expect(groupMembers(m.pid), `group of master ${m.pid}`).toEqual([]);
  });
});
