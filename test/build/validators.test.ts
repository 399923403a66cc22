import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { ValidateFunction } from "ajv";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PRECOMPILE, precompiledModule, ROOT } from "../../bin/build.js";
import { adminValidators } from "../../harness/gateway/admin/validators.ts";
import { invalidRouteArb, routeArb } from "../../harness/props/arbitraries.ts";
import { scenarioValidators } from "../../harness/runner/validators.ts";

// Under node_modules so that the standalone code's require("ajv/dist/runtime/...") resolves.
const dir = join(ROOT, "node_modules", ".cache", `harness-test-${process.pid}`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function precompiled<K extends string>(file: string, name: string): Promise<Record<K, ValidateFunction>> {
  mkdirSync(dir, { recursive: true });
  const out = join(dir, file.replace(/\W/g, "_") + ".mjs");
  writeFileSync(out, await precompiledModule(file));
  const mod = (await import(pathToFileURL(out).href)) as Record<string, (() => Record<K, ValidateFunction>) & { precompiled?: boolean }>;
  expect(Object.keys(mod)).toEqual([name]);
  expect(mod[name]!.precompiled).toBe(true);
  return mod[name]!();
}

/** Both validators on their own copy of the value: same verdict, same errors, same defaults filled in. */
function expectSame(compiled: ValidateFunction, standalone: ValidateFunction, value: unknown): boolean {
  const a = structuredClone(value);
  const b = structuredClone(value);
  const ok = compiled(a);
  expect({ ok: standalone(b), errors: standalone.errors ?? null, value: b }).toEqual({ ok, errors: compiled.errors ?? null, value: a });
  return ok;
}

describe("the build's precompiled validators behave as the ones compiled at run time", () => {
  it("lists exactly the modules that define validator sets", () => {
    expect([...PRECOMPILE].sort()).toEqual(["harness/gateway/admin/validators.ts", "harness/runner/validators.ts"]);
  });

  it("Admin API: valid routes (defaults filled in) and routes broken by one mutation", async () => {
    const runtime = adminValidators();
    const standalone = await precompiled<"route" | "plugin">("harness/gateway/admin/validators.ts", "adminValidators");
    const fixtures = ["13101/route.json", ...readdirSync(join(ROOT, "fixtures/routes")).map((f) => `routes/${f}`)].map((f) => JSON.parse(readFileSync(join(ROOT, "fixtures", f), "utf8")) as Record<string, unknown>);
    const generated = fc.sample(routeArb(), { seed: 11, numRuns: 150 });
    const invalid = fc.sample(invalidRouteArb(), { seed: 12, numRuns: 150 }).map((r) => r.route);
    const verdicts = (routes: Record<string, unknown>[]) =>
      routes.map((route) => {
        const routeOk = expectSame(runtime.route, standalone.route, route);
        const pluginOk = expectSame(runtime.plugin, standalone.plugin, (route.plugins as Record<string, unknown> | undefined)?.["ai-proxy-multi"]);
        return routeOk && pluginOk;
      });
    verdicts(fixtures);
    // Both verdicts were really exercised.
    expect(verdicts(generated).every(Boolean)).toBe(true);
    expect(verdicts(invalid).filter((ok) => !ok).length).toBeGreaterThan(100);
  });

  it("scenario files: the catalogue, its steps, and broken ones", async () => {
    const runtime = scenarioValidators();
    const standalone = await precompiled<string>("harness/runner/validators.ts", "scenarioValidators");
    expect(Object.keys(standalone).sort()).toEqual(Object.keys(runtime).sort());
    const files = readdirSync(join(ROOT, "scenarios")).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThan(5);
    let rejected = 0;
    for (const f of files) {
      const doc = parse(readFileSync(join(ROOT, "scenarios", f), "utf8")) as { steps: Record<string, unknown>[]; [k: string]: unknown };
      const broken = [{ ...doc, steps: [] }, { ...doc, expect: { default: "crashes" } }, { ...doc, colour: "red" }, { ...doc, name: 7 }];
      expect(expectSame(runtime.scenario!, standalone.scenario!, doc)).toBe(true);
      for (const b of broken) if (!expectSame(runtime.scenario!, standalone.scenario!, b)) rejected += 1;
      for (const step of doc.steps) {
        const [kind, value] = Object.entries(step)[0]!;
        const key = `step:${kind}` as const;
        expect(expectSame(runtime[key]!, standalone[key]!, value)).toBe(true);
        for (const b of [{ ...(value as object), extra: 1 }, "soon", 12, null]) if (!expectSame(runtime[key]!, standalone[key]!, b)) rejected += 1;
      }
    }
    expect(rejected).toBeGreaterThan(files.length * 4);
  });
});
