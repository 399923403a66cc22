/**
 * Chaos: Ctrl-C at a random point of each command. Whatever the point, the command either
 * finished before the signal (and says so normally), or it says `interrupted`, exits 130, prints
 * no verdict it did not observe, writes no report, and leaves nothing running and no temp dir.
 * The point is drawn anew on each run and printed with any failure, so a failure can be replayed.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hasEtcdBinary } from "../helpers/processes.ts";
import { launch, leftovers, randomPoint, sleep, treeOf } from "./cli.ts";

const base = mkdtempSync(join(tmpdir(), "chaos-interrupt-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

interface Case {
  name: string;
  args: (out: string) => string[];
  /** Output that says the command has started its work. */
  started: RegExp;
  /** The random point is drawn in [0, window) ms after `started`. */
  window: number;
  /** The whole process group, as a terminal's Ctrl-C, or the harness alone (kill -INT pid). */
  group: boolean;
  /** What a finished (not interrupted) run prints. */
  finished: RegExp;
  /** Never printed when interrupted. */
  never: RegExp[];
}

const cases: Case[] = [
  { name: "repro", args: (out) => ["repro", "--out", out], started: /^store: /m, window: 400, group: true, finished: /behave as known/, never: [/behave as known/] },
  {
    name: "run (inproc target, real etcd, the catalogue)",
    args: (out) => ["run", "scenarios/", "--versions", "everything", "--reporter", "console,junit", "--out", out],
    started: /^running /m,
    window: 1000,
    group: false,
    finished: /^\d+ passed, 0 failed$/m,
    never: [/^\d+ passed, \d+ failed$/m, /FAIL/, /UNAVAILABLE/],
  },
  {
    name: "run (serve target)",
    args: (out) => ["run", "scenarios/13101-crash-loop-after-patch.yaml", "--versions", "3.15.0,3.18.0", "--target", "serve", "--reporter", "console,junit", "--out", out],
    started: /^running /m,
    window: 4000,
    group: true,
    finished: /^2 passed, 0 failed$/m,
    never: [/^\d+ passed, \d+ failed$/m, /FAIL/],
  },
  { name: "props", args: (out) => ["props", "--runs", "300", "--out", out], started: /^props: seed/m, window: 2500, group: true, finished: /verdicts are as known/, never: [/^PROFILE/m, /verdicts/] },
];

describe.skipIf(!hasEtcdBinary())("Ctrl-C at a random point", () => {
  it.each(cases)("$name", async (c) => {
    const out = mkdtempSync(join(base, "out-"));
    const h = launch(c.args(out));
    await h.waitFor(c.started);
    const point = randomPoint(c.window);
    await sleep(point);
    const tree = treeOf(h.pid);
    const t0 = Date.now();
    try {
      process.kill(c.group ? -h.pid : h.pid, "SIGINT");
    } catch {
      // already ended
    }
    const res = await h.sub;
    const stopMs = Date.now() - t0;
    if (process.env.CHAOS_TRACE) console.log(`${c.name}: exit ${res.exitCode} after ${point} ms, stopped in ${stopMs} ms`);
    const where = `SIGINT ${point} ms after ${c.started} to the ${c.group ? "process group" : "harness"}; output:\n${h.out()}`;
    if (res.exitCode === 130) {
      expect(h.out(), where).toMatch(/^interrupted \(SIGINT\): stopping$/m);
      for (const re of c.never) expect(h.out(), where).not.toMatch(re);
      // Nothing was observed to the end, so nothing is recorded.
      expect(readdirSync(out), where).toEqual([]);
      expect(stopMs, where).toBeLessThan(8000);
    } else {
      expect(res.exitCode, where).toBe(0);
      expect(h.out(), where).toMatch(c.finished);
    }
    expect(await leftovers(h.pid, tree), where).toEqual([]);
    expect(existsSync(out)).toBe(true);
  });
});
