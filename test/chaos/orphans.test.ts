/**
 * Chaos: nothing outlives the harness. kill -9 at a random point while etcd, `harness serve`
 * children or LuaJIT workers run; an ETCD_BIN wrapper script that does not exec etcd; temp dirs
 * left by a harness that died; and a user's own etcd (ETCD_ENDPOINTS) that must keep no key of ours.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { EtcdStore } from "../../harness/etcd/etcd-store.ts";
import { findEtcdBinary, startLocalEtcd } from "../../harness/etcd/local-etcd.ts";
import { eventually, hasEtcdBinary } from "../helpers/processes.ts";
import { launch, leftovers, randomPoint, ROOT, sleep, treeOf } from "./cli.ts";

const base = mkdtempSync(join(tmpdir(), "chaos-orphans-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

function hasLuajit(): boolean {
  return spawnSync("luajit", ["-v"]).status === 0;
}

describe.skipIf(!hasEtcdBinary())("kill -9 of the harness", () => {
  it("with etcd and two `harness serve` children running: all of them (and the temp dirs) are gone within 2 s", async () => {
    const h = launch(["run", "scenarios/", "--versions", "all", "--target", "serve", "--reporter", "console"]);
    await h.waitFor(/^running /m);
    // Both serve children are up (each prints its ready line before its run starts).
    expect(await eventually(() => treeOf(h.pid).filter((p) => /harness\.js serve/.test(p.cmdline)).length === 2, 15_000)).toBe(true);
    await sleep(randomPoint(1500));
    const tree = treeOf(h.pid);
    const names = tree.map((p) => p.comm);
    expect(names).toContain("etcd");
    process.kill(h.pid, "SIGKILL");
    await h.sub;
    expect(await leftovers(h.pid, tree, 2000), `tree was: ${tree.map((p) => p.cmdline.slice(0, 80)).join("; ")}`).toEqual([]);
  });

  it.skipIf(!hasLuajit())("with LuaJIT workers running (props on the lua engine): they are gone within 2 s", async () => {
    const h = launch(["props", "--engine", "lua", "--version", "3.18.0", "--runs", "5000", "--out", base]);
    await h.waitFor(/^props: seed/m);
    expect(await eventually(() => treeOf(h.pid).some((p) => p.comm === "luajit"), 10_000)).toBe(true);
    await sleep(randomPoint(1000));
    const tree = treeOf(h.pid);
    process.kill(h.pid, "SIGKILL");
    await h.sub;
    expect(await leftovers(h.pid, tree, 2000)).toEqual([]);
  });
});

describe.skipIf(!hasEtcdBinary())("etcd started through a wrapper script, and dead owners' dirs", () => {
  it("an ETCD_BIN shell script without exec: the repro works and its etcd is stopped with it; a dead harness's dir is swept", async () => {
    const wrapper = join(base, "etcd-wrapper.sh");
    writeFileSync(wrapper, `#!/bin/sh\n# no exec: etcd is a child of this shell\n${findEtcdBinary().path} "$@"\n`);
    chmodSync(wrapper, 0o755);
    // What a harness killed together with its reaper leaves: a dir named after a pid that is gone.
    const gone = execa("true");
    const deadPid = gone.pid!;
    await gone;
    const stale = join(tmpdir(), `harness-etcd-${deadPid}-zZ9yY8`);
    mkdirSync(join(stale, "data", "member"), { recursive: true });

    const h = launch(["repro", "--versions", "3.16.0", "--out", join(base, "wrapper-out")], { ETCD_BIN: wrapper });
    await h.waitFor(/^store: etcd .*local binary .*etcd-wrapper\.sh/m);
    const tree = treeOf(h.pid);
    const res = await h.sub;
    expect(res.exitCode, h.out()).toBe(0);
    expect(h.out()).toMatch(/^3\.16\.0\s+REPRODUCED/m);
    expect(await leftovers(h.pid, tree, 2000)).toEqual([]);
    expect(existsSync(stale)).toBe(false);
  });
});

describe.skipIf(!hasEtcdBinary())("a user's etcd (ETCD_ENDPOINTS)", () => {
  it("keeps no key of ours after repro, run and run --target serve", async () => {
    const users = await startLocalEtcd();
    const store = new EtcdStore([users.endpoint], "the user's etcd");
    try {
      await store.put("/their/own/key", "stays");
      const env = { ETCD_ENDPOINTS: users.endpoint };
      const out = join(base, "users-out");
      const results = await Promise.all([
        execa("node", ["bin/harness.js", "repro", "--out", out], { cwd: ROOT, reject: false, env }),
        execa("node", ["bin/harness.js", "run", "scenarios/13101-crash-loop-after-patch.yaml", "scenarios/etcd-compaction-reloads-all.yaml", "--versions", "3.16.0,3.18.0"], { cwd: ROOT, reject: false, env }),
        execa("node", ["bin/harness.js", "run", "scenarios/13101-create-timer-crash.yaml", "--versions", "3.18.0", "--target", "serve"], { cwd: ROOT, reject: false, env }),
      ]);
      for (const r of results) expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      const left = (await store.range("")).kvs.map((kv) => kv.key);
      expect(left).toEqual(["/their/own/key"]);
    } finally {
      await store.close();
      await users.stop();
    }
  });
});
