import { describe, expect, it } from "vitest";
import { runRepro } from "../../harness/cli/repro.ts";
import { etcdsOf, hasEtcdBinary } from "../helpers/processes.ts";

const KNOWN = {
  "3.15.0": ["REPRODUCED", 3, "healthcheck_manager.lua:292: failed to run timer_working_pool_check:", "healthcheck_manager.lua:242: attempt to index local 'upstream' (a nil value), context: ngx.timer"],
  "3.16.0": ["REPRODUCED", 3, "healthcheck_manager.lua:288: failed to run timer_working_pool_check:", "healthcheck_manager.lua:238: attempt to index local 'upstream' (a nil value), context: ngx.timer"],
  "3.17.0": ["NOT REPRODUCED", 0],
  "3.18.0": ["NOT REPRODUCED", 0],
} as const;

describe.skipIf(!hasEtcdBinary())("the #13101 repro on a real etcd (local binary)", () => {
  it("reproduces on 3.15.0 and 3.16.0 with the report's lines, not on 3.17.0 and 3.18.0, and leaves no etcd behind", async () => {
    const lines: string[] = [];
    const record = await runRepro({ versions: "all", store: "etcd", log: (l) => lines.push(l) });
    expect(record.store.kind).toBe("etcd");
    expect(record.store.source).toBe("local-binary");
    expect(lines.filter((l) => l.startsWith("store: "))).toHaveLength(1);
    expect(record.results.map((r) => r.version)).toEqual(Object.keys(KNOWN));
    for (const r of record.results) {
      const [verdict, failures, ...contains] = KNOWN[r.version as keyof typeof KNOWN];
      expect(r.verdict, r.version).toBe(verdict);
      expect(r.failures, r.version).toBe(failures);
      for (const c of contains) expect(r.firstErrorLine, r.version).toContain(c);
      if (verdict === "NOT REPRODUCED") expect(r.firstErrorLine).toBeUndefined();
      expect(r.asKnown).toBe(true);
    }
    expect(record.ok).toBe(true);
    expect(etcdsOf(process.pid)).toEqual([]);
  });
});

describe("the #13101 repro on the in-memory store", () => {
  it("gives the same verdicts, and the candidates fix it", async () => {
    const record = await runRepro({ versions: "everything", store: "memory", log: () => undefined });
    expect(record.store.kind).toBe("memory");
    expect(Object.fromEntries(record.results.map((r) => [r.version, [r.verdict, r.failures]]))).toEqual({
      "3.15.0": ["REPRODUCED", 3],
      "3.16.0": ["REPRODUCED", 3],
      "3.17.0": ["NOT REPRODUCED", 0],
      "3.18.0": ["NOT REPRODUCED", 0],
      suggested: ["NOT REPRODUCED", 0],
      "fallback-without-get-node": ["NOT REPRODUCED", 0],
    });
  });
});
