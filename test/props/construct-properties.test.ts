import { describe, expect, it } from "vitest";
import type { Instance } from "../../harness/gateway/plugins/ai-proxy-multi/types.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import {
  checkAllConstructProperties,
  checkConstructProperty,
  CONSTRUCT_PROPERTIES,
  type ConstructPropertyId,
  type PropertyVerdict,
} from "../../harness/props/construct-properties.ts";
import { VERTEX_REGIONS } from "../../harness/props/arbitraries.ts";
import { PROPERTY_IDS } from "../../harness/cli/props.ts";

const SEED = 13101;
const RUNS = 200;

/** Expected verdicts, written out by hand: true = the property holds on that profile. */
const EXPECTED: Record<string, Record<ConstructPropertyId, boolean>> = {
  "3.15.0": { totality: false, agreement: true, purity: true, idempotence: true },
  "3.16.0": { totality: false, agreement: true, purity: true, idempotence: true },
  "3.17.0": { totality: true, agreement: true, purity: false, idempotence: true },
  "3.18.0": { totality: true, agreement: true, purity: false, idempotence: true },
  suggested: { totality: true, agreement: true, purity: true, idempotence: true },
  "fallback-without-get-node": { totality: true, agreement: false, purity: true, idempotence: true },
};

const ROWS = Object.entries(EXPECTED).flatMap(([profile, byProperty]) =>
  (Object.entries(byProperty) as [ConstructPropertyId, boolean][]).map(([property, holds]) => ({ profile, property, holds })),
);

const instanceOf = (v: PropertyVerdict): Instance => v.counterexample as Instance;

/** What a counterexample must look like, for each expected failure. */
const FAILURE_CHECKS: Record<string, (v: PropertyVerdict) => void> = {
  "3.15.0/totality": (v) => expect(v.message).toContain(`failed to resolve endpoint for instance: ${instanceOf(v).name}`),
  "3.16.0/totality": (v) => expect(v.message).toContain(`failed to resolve endpoint for instance: ${instanceOf(v).name}`),
  "3.17.0/purity": (v) => {
    expect(v.message).toContain("added _dns_nodes");
    expect(v.message).toContain("added _nodes_ver");
  },
  "3.18.0/purity": (v) => {
    expect(v.message).toContain("added _dns_nodes");
    expect(v.message).toContain("added _nodes_ver");
  },
  "fallback-without-get-node/agreement": (v) => {
    const ins = instanceOf(v);
    expect(ins.provider).toBe("vertex-ai");
    expect(ins.override).toBeUndefined();
    expect(VERTEX_REGIONS).toContain(ins.provider_conf?.region);
    // The fallback checks the global host; the request path goes to the regional one.
    expect(v.message).toContain("(aiplatform.googleapis.com)");
    expect(v.message).toContain(`(${ins.provider_conf!.region}-aiplatform.googleapis.com)`);
  },
};

describe("construct_upstream properties, every profile (seed 13101, 200 runs)", () => {
  it("the table covers every profile and every property", () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(["3.15.0", "3.16.0", "3.17.0", "3.18.0", "fallback-without-get-node", "suggested"]);
    for (const byProperty of Object.values(EXPECTED)) expect(Object.keys(byProperty).sort()).toEqual(CONSTRUCT_PROPERTIES.map((p) => p.id).sort());
    expect(Object.keys(FAILURE_CHECKS).sort()).toEqual(ROWS.filter((r) => !r.holds).map((r) => `${r.profile}/${r.property}`).sort());
  });

  it.each(ROWS)("$profile: $property holds = $holds", async ({ profile, property, holds }) => {
    const v = await checkConstructProperty(getProfile(profile), property, { runs: RUNS, seed: SEED });
    expect(v).toMatchObject({ property, profile, seed: SEED });
    expect(v.wallMs).toBeGreaterThanOrEqual(0);
    if (holds) {
      expect(v.message).toBeUndefined();
      expect(v.holds).toBe(true);
      expect(v.runs).toBe(RUNS);
      expect(v.counterexample).toBeUndefined();
      return;
    }
    expect(v.holds, v.message).toBe(false);
    expect(v.runs).toBeLessThanOrEqual(RUNS);
    expect(typeof v.path).toBe("string");
    expect(typeof v.message).toBe("string");
    // The counterexample is a stored config: plain JSON, no runtime fields.
    const ins = instanceOf(v);
    expect(JSON.parse(JSON.stringify(ins))).toEqual(ins);
    expect(Object.keys(ins).filter((k) => k.startsWith("_"))).toEqual([]);
    expect(ins.checks?.active).toBeDefined();
    expect(v.message).toContain(`"${ins.name}"`);
    FAILURE_CHECKS[`${profile}/${property}`]!(v);
  });
});

describe("replaying a failure", () => {
  it.each([
    ["fallback-without-get-node", "agreement"],
    ["3.17.0", "purity"],
    ["3.15.0", "totality"],
  ] as const)("%s %s: the returned seed and path give the same counterexample", async (profile, property) => {
    const first = await checkConstructProperty(getProfile(profile), property, { runs: RUNS, seed: SEED });
    expect(first.holds).toBe(false);
    const replay = await checkConstructProperty(getProfile(profile), property, { runs: RUNS, seed: first.seed, path: first.path! });
    expect(replay.holds).toBe(false);
    expect(replay.counterexample).toEqual(first.counterexample);
    expect(replay.message).toBe(first.message);
    expect(replay.path).toBe(first.path);
  });

  it("another seed still finds a vertex-ai counterexample for fallback-without-get-node", async () => {
    const v = await checkConstructProperty(getProfile("fallback-without-get-node"), "agreement", { runs: RUNS, seed: 7 });
    expect(v.holds).toBe(false);
    expect(v.seed).toBe(7);
    FAILURE_CHECKS["fallback-without-get-node/agreement"]!(v);
  });
});

describe("checkAllConstructProperties", () => {
  it("gives one verdict per property, in order, matching the table", async () => {
    const verdicts = await checkAllConstructProperties(getProfile("fallback-without-get-node"), { runs: 50, seed: SEED });
    expect(verdicts.map((v) => v.property)).toEqual(CONSTRUCT_PROPERTIES.map((p) => p.id));
    expect(verdicts.map((v) => v.holds)).toEqual(CONSTRUCT_PROPERTIES.map((p) => EXPECTED["fallback-without-get-node"]![p.id]));
  });

  it("rejects an unknown property id", async () => {
    await expect(checkConstructProperty(getProfile("suggested"), "speed" as ConstructPropertyId, { runs: 1, seed: SEED })).rejects.toThrow(/unknown construct property "speed"/);
  });
});

describe("harness props", () => {
  it("lists the construct properties in their order, then lifecycle (its own copy keeps --help from loading them)", () => {
    expect(PROPERTY_IDS).toEqual([...CONSTRUCT_PROPERTIES.map((p) => p.id), "lifecycle"]);
  });
});
