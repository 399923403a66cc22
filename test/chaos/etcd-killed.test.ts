/**
 * Chaos: the harness's etcd dies (kill -9) at a random point of a catalogue run. Every run still
 * ends: those that needed the store fail within seconds, naming it, and the command ends with
 * exit 1 and leaves nothing behind. (With etcd killed, runs used to hang for ever on the etcd
 * restart scenarios.)
 */
import { describe, expect, it } from "vitest";
import { hasEtcdBinary } from "../helpers/processes.ts";
import { launch, leftovers, randomPoint, sleep, treeOf } from "./cli.ts";

describe.skipIf(!hasEtcdBinary())("etcd killed in the middle of a run", () => {
  it("every run ends, failures name the store, the command exits 1", async () => {
    const h = launch(["run", "scenarios/", "--versions", "everything", "--concurrency", "2"]);
    await h.waitFor(/^store: etcd .*127\.0\.0\.1:(\d+)/m);
    const port = /^store: etcd .*127\.0\.0\.1:(\d+)/m.exec(h.out())![1];
    await h.waitFor(/^\[\s*1\//m);
    const point = randomPoint(300);
    await sleep(point);
    const tree = treeOf(h.pid);
    const etcd = tree.find((p) => p.comm === "etcd");
    expect(etcd, h.out()).toBeDefined();
    process.kill(etcd!.pid, "SIGKILL");
    const t0 = Date.now();
    const res = await h.sub;
    const where = `etcd killed ${point} ms after the first run ended; output:\n${h.out()}`;
    expect(Date.now() - t0, where).toBeLessThan(60_000);
    const lines = h.out().split("\n");
    const total = Number(/^\[\s*\d+\/(\d+)\]/m.exec(h.out())![1]);
    expect(lines.filter((l) => /^\[\s*\d+\/\d+\] /.test(l)), where).toHaveLength(total);
    const failed = lines.filter((l) => /^\[\s*\d+\/\d+\] FAIL/.test(l));
    if (process.env.CHAOS_TRACE) console.log(`etcd killed after ${point} ms: ${failed.length} of ${total} runs failed; longest ${Math.max(0, ...failed.map((l) => Number(/\((\d+) ms\)/.exec(l)![1])))} ms`);
    if (failed.length > 0) {
      expect(res.exitCode, where).toBe(1);
      for (const l of failed) {
        expect(l, where).toContain(`etcd at 127.0.0.1:${port}`);
        // A run that loses its store fails within seconds (5 s bounds every wait on the store).
        expect(Number(/\((\d+) ms\)/.exec(l)![1]), l).toBeLessThan(7000);
      }
    } else {
      // etcd died after every run that needed it.
      expect(res.exitCode, where).toBe(0);
    }
    expect(await leftovers(h.pid, tree)).toEqual([]);
  });
});
