/**
 * The scenario cache of the built CLI: a scenario comes from the cache only while this build
 * loads it and none of the files it was made from (scenario, fixtures) changed; mistakes are never
 * cached; the sources never touch the cache.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { loadScenario, ScenarioError } from "../../harness/runner/load.ts";
import { loadScenarios } from "../../harness/runner/scenario-cache.ts";

const dir = mkdtempSync(join(tmpdir(), "harness-scenario-cache-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SCENARIO = `name: cached or not
backends:
  a: {hosts: [a.test]}
steps:
  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: ./route.json}
  - wait: 1s
expect: {default: passes}
`;
const ROUTE = JSON.stringify({ uri: "/x", plugins: {} });

/** A scenario and its local fixture in a folder of their own. */
function files(name: string): { scenario: string; fixture: string; cache: string } {
  const d = mkdtempSync(join(dir, `${name}-`));
  writeFileSync(join(d, "route.json"), ROUTE);
  writeFileSync(join(d, "s.yaml"), SCENARIO);
  return { scenario: join(d, "s.yaml"), fixture: join(d, "route.json"), cache: join(d, "cache", "scenarios.json") };
}

/** Mark what the cache holds for a file, so that a load from the cache shows. */
function markCached(cache: string, scenario: string): void {
  const entries = JSON.parse(readFileSync(cache, "utf8")) as Record<string, { scenario: { name: string } }>;
  entries[scenario]!.scenario.name = "from the cache";
  writeFileSync(cache, JSON.stringify(entries));
}

describe("the scenario cache", () => {
  it("gives back what was loaded while nothing changed, and loads again when the scenario or a fixture does", async () => {
    const f = files("changes");
    const [first] = await loadScenarios([f.scenario], "build-1", f.cache);
    expect(first).toEqual(loadScenario(f.scenario));
    markCached(f.cache, f.scenario);
    expect((await loadScenarios([f.scenario], "build-1", f.cache))[0]!.name).toBe("from the cache");

    // The fixture changes: the step's body is read again.
    writeFileSync(f.fixture, JSON.stringify({ uri: "/changed", plugins: {} }));
    const [again] = await loadScenarios([f.scenario], "build-1", f.cache);
    expect(again!.name).toBe("cached or not");
    expect(again!.steps[0]).toMatchObject({ kind: "admin", body: expect.stringContaining("/changed") });

    // The scenario file changes.
    markCached(f.cache, f.scenario);
    writeFileSync(f.scenario, SCENARIO.replace("wait: 1s", "wait: 2s"));
    const [edited] = await loadScenarios([f.scenario], "build-1", f.cache);
    expect(edited!.name).toBe("cached or not");
    expect(edited!.steps[1]).toMatchObject({ kind: "wait", ms: 2000 });
  });

  it("is not used by another build", async () => {
    const f = files("builds");
    await loadScenarios([f.scenario], "build-1", f.cache);
    markCached(f.cache, f.scenario);
    expect((await loadScenarios([f.scenario], "build-2", f.cache))[0]!.name).toBe("cached or not");
  });

  it("keeps no mistake: a bad scenario fails the same way each time, and once fixed it loads", async () => {
    const f = files("mistake");
    writeFileSync(f.scenario, SCENARIO.replace("wait: 1s", "wait: soon"));
    for (let i = 0; i < 2; i++) await expect(loadScenarios([f.scenario], "build-1", f.cache)).rejects.toBeInstanceOf(ScenarioError);
    expect(existsSync(f.cache)).toBe(false);
    writeFileSync(f.scenario, SCENARIO);
    expect((await loadScenarios([f.scenario], "build-1", f.cache))[0]!.name).toBe("cached or not");
  });

  it("names each file as the command was given it, wherever it was cached from", async () => {
    const f = files("names");
    await loadScenarios([f.scenario], "build-1", f.cache);
    const [hit] = await loadScenarios([f.scenario], "build-1", f.cache);
    expect(hit!.file).toBe(loadScenario(f.scenario).file);
  });

  it("is not read or written when the sources run (no build)", async () => {
    const f = files("sources");
    await loadScenarios([f.scenario], undefined, f.cache);
    expect(existsSync(f.cache)).toBe(false);
  });

  it("is what the built CLI uses (HARNESS_CACHE_DIR): a second run reads it", async () => {
    const f = files("cli");
    const cacheDir = join(dir, "cli-cache");
    const run = () => execa("node", ["bin/harness.js", "run", f.scenario, "--store", "memory", "--versions", "3.18.0", "--out", join(dir, "out")], { reject: false, env: { HARNESS_CACHE_DIR: cacheDir, NO_COLOR: "1" } });
    const first = await run();
    expect(first.exitCode, first.stderr).toBe(0);
    markCached(join(cacheDir, "scenarios.json"), f.scenario);
    const second = await run();
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stdout).toContain("from the cache");
  });
});
