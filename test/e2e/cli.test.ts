import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { etcdsOf, hasEtcdBinary, ownedDirsOf } from "../helpers/processes.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const out = mkdtempSync(join(tmpdir(), "harness-cli-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function harness(args: string[]) {
  return execa("node", ["bin/harness.js", ...args], { cwd: ROOT, reject: false, env: { NO_COLOR: "1" } });
}

describe("harness repro, run as a user would", () => {
  it.skipIf(!hasEtcdBinary())("prints the verdict table on real etcd, writes a JSON record, exits 0, leaves no etcd", async () => {
    const sub = harness(["repro", "--out", out]);
    const res = await sub;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/^store: etcd .*local binary/m);
    const rows = res.stdout.split("\n");
    expect(rows[0]).toMatch(/^VERSION\s+VERDICT\s+FAILURES IN 3 S AFTER PATCH\s+AS KNOWN\s+FIRST MATCHING ERROR LINE$/);
    expect(rows[1]).toMatch(/^3\.15\.0\s+REPRODUCED\s+3\s+yes\s+\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[error\] .*healthcheck_manager\.lua:292: failed to run timer_working_pool_check: .*healthcheck_manager\.lua:242: attempt to index local 'upstream' \(a nil value\), context: ngx\.timer$/);
    expect(rows[2]).toMatch(/^3\.16\.0\s+REPRODUCED\s+3\s+yes\s+.*healthcheck_manager\.lua:288: .*healthcheck_manager\.lua:238: /);
    expect(rows[3]).toMatch(/^3\.17\.0\s+NOT REPRODUCED\s+0\s+yes\s+-$/);
    expect(rows[4]).toMatch(/^3\.18\.0\s+NOT REPRODUCED\s+0\s+yes\s+-$/);
    expect(res.stdout).toContain("all 4 known versions behave as known; reproduced on: 3.15.0, 3.16.0");
    const records = readdirSync(out).filter((f) => f.startsWith("repro-13101-"));
    expect(records).toHaveLength(1);
    const record = JSON.parse(readFileSync(join(out, records[0]!), "utf8")) as { ok: boolean; results: unknown[] };
    expect(record.ok).toBe(true);
    expect(record.results).toHaveLength(4);
    expect(etcdsOf(sub.pid!)).toEqual([]);
    expect(ownedDirsOf(sub.pid!)).toEqual([]);
  });

  it("--json prints the record", async () => {
    const res = await harness(["repro", "--store", "memory", "--versions", "3.16.0,suggested", "--json", "--out", out]);
    expect(res.exitCode, res.stderr).toBe(0);
    const parsed = JSON.parse(res.stdout) as { results: { version: string; verdict: string }[] };
    expect(parsed.results.map((r) => [r.version, r.verdict])).toEqual([
      ["3.16.0", "REPRODUCED"],
      ["suggested", "NOT REPRODUCED"],
    ]);
  });

  it("bad usage exits 2 with one line and no stack trace", async () => {
    for (const args of [["repro", "--versions", "9.9.9"], ["repro", "--store", "redis"], ["repro", "--bogus"], ["frobnicate"]]) {
      const res = await harness(args);
      expect(res.exitCode, args.join(" ")).toBe(2);
      expect(res.stderr).not.toMatch(/\n\s+at /);
    }
    const res = await harness(["repro", "--versions", "9.9.9"]);
    expect(res.stderr.trim()).toBe('harness: --versions: unknown version "9.9.9" (known: 3.15.0, 3.16.0, 3.17.0, 3.18.0, suggested, fallback-without-get-node)');
  });

  it("--help works on every command and exits 0", async () => {
    for (const args of [["--help"], ["repro", "--help"], ["run", "--help"], ["serve", "--help"], ["props", "--help"]]) {
      const res = await harness(args);
      expect(res.exitCode, args.join(" ")).toBe(0);
      expect(res.stdout).toMatch(new RegExp(`^Usage: harness${args[0] === "--help" ? "" : ` ${args[0]}`} `));
    }
  });
});

describe("harness run, run as a user would", () => {
  it.skipIf(!hasEtcdBinary())("a scenario that restarts etcd gets a second local etcd of its own; both are gone after", async () => {
    const sub = harness(["run", "scenarios/etcd-restart-resumes-watch.yaml", "scenarios/backend-down-skipped.yaml", "--versions", "3.18.0", "--out", out]);
    const res = await sub;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/^store: etcd .*local binary/m);
    expect(res.stderr).toMatch(/^store for the scenarios that act on etcd: etcd .*local binary/m);
    expect(res.stdout).toContain("2 passed, 0 failed");
    expect(etcdsOf(sub.pid!)).toEqual([]);
    expect(ownedDirsOf(sub.pid!)).toEqual([]);
  });

  it.skipIf(!hasEtcdBinary())("without such a scenario, or with --concurrency 1, there is one etcd", async () => {
    for (const args of [["scenarios/backend-down-skipped.yaml"], ["scenarios/etcd-restart-resumes-watch.yaml", "--concurrency", "1"]]) {
      const res = await harness(["run", ...args, "--versions", "3.18.0", "--out", out]);
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stderr.match(/^store/gm), res.stderr).toEqual(["store"]);
    }
  });
});

describe("harness props, run as a user would", () => {
  it("prints the verdicts, writes the lifecycle counterexample as a scenario, and harness run replays it", async () => {
    const res = await harness(["props", "--version", "3.16.0,suggested", "--runs", "150", "--seed", "7", "--out", out]);
    expect(res.exitCode, res.stderr).toBe(0);
    const table = res.stdout.split("\n");
    expect(table[0]).toMatch(/^PROFILE\s+TOTALITY\s+AGREEMENT\s+PURITY\s+IDEMPOTENCE\s+LIFECYCLE\s*$/);
    expect(table[1]).toMatch(/^3\.16\.0\s+FAILS\s+holds\s+holds\s+holds\s+FAILS\s*$/);
    expect(table[2]).toMatch(/^suggested\s+holds\s+holds\s+holds\s+holds\s+holds\s*$/);
    expect(res.stdout).toContain("all 10 verdicts are as known");
    expect(res.stdout).toMatch(/3\.16\.0 lifecycle: fails .*seed 7/);
    const steps = (text: string) => text.split("\n").filter((l) => /^  \d+\. /.test(l));
    const replayLine = /replay: harness (props --version 3\.16\.0 --property lifecycle .*)$/m.exec(res.stdout)?.[1];
    expect(replayLine).toBeDefined();
    const replayArgs = replayLine!.split(" ").map((a) => a.replace(/^'|'$/g, ""));
    const replayed = await harness([...replayArgs, "--out", out]);
    expect(replayed.exitCode, replayed.stderr).toBe(0);
    const found = steps(res.stdout.slice(res.stdout.indexOf("3.16.0 lifecycle")));
    expect(found.length).toBeGreaterThanOrEqual(3);
    expect(steps(replayed.stdout)).toEqual(found);
    const scenario = /scenario: (\S+\.yaml)/.exec(res.stdout)?.[1];
    expect(scenario).toBeDefined();
    const replay = await harness(["run", scenario!, "--versions", "3.16.0,3.18.0", "--store", "memory"]);
    expect(replay.exitCode, replay.stdout + replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(/ok\s+3\.16\.0\s+reproduces \(expected reproduces\)/);
    expect(replay.stdout).toMatch(/ok\s+3\.18\.0\s+passes \(expected passes\)/);
  });

  it("bad props usage exits 2", async () => {
    const res = await harness(["props", "--property", "beauty"]);
    expect(res.exitCode).toBe(2);
    expect(res.stderr.trim()).toBe('harness: --property: expected one of totality, agreement, purity, idempotence, lifecycle, got "beauty"');
  });
});
