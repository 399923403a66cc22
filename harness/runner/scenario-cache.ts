/**
 * Loaded scenarios kept between commands. Parsing YAML is most of what loading a scenario costs,
 * and on a fresh process (the parser not yet compiled by V8) the catalogue takes a few hundred
 * milliseconds. The built CLI (dist/) keeps each loaded scenario with the files it came from
 * (scenario, fixtures, hosts.json: path, mtime, size) and the build that loaded it; a later
 * command uses it only when that build loads it and none of those files changed. The TypeScript
 * sources (tests, tsx) never use it: the loader itself may have changed.
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Scenario } from "./scenario.ts";

/** Set by bin/build.js in dist/ (a new value per build); undefined when the sources run. */
declare const HARNESS_BUILD_ID: string | undefined;

/** HARNESS_CACHE_DIR, or node_modules/.cache/apisix-harness in the harness's folder. */
export function scenarioCacheFile(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.HARNESS_CACHE_DIR || fileURLToPath(new URL("../../node_modules/.cache/apisix-harness/", import.meta.url));
  return resolve(dir, "scenarios.json");
}

type Stamp = [path: string, mtimeMs: number, size: number];

interface Entry {
  build: string;
  inputs: Stamp[];
  scenario: Scenario;
}

function stamp(path: string): Stamp | undefined {
  try {
    const st = statSync(path);
    return [path, st.mtimeMs, st.size];
  } catch {
    return undefined;
  }
}

function unchanged(entry: Entry, build: string): boolean {
  if (entry.build !== build) return false;
  return entry.inputs.every(([path, mtimeMs, size]) => {
    const now = stamp(path);
    return now !== undefined && now[1] === mtimeMs && now[2] === size;
  });
}

function readCache(file: string): Record<string, Entry> {
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as unknown;
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, Entry>) : {};
  } catch {
    return {};
  }
}

/** Replaced atomically: concurrent commands each write a whole file, the last one stays. */
function writeCache(file: string, entries: Record<string, Entry>): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(entries));
    renameSync(tmp, file);
  } catch {
    // A read-only install: every command loads the files again, as the sources do.
  }
}

/** The build this code belongs to, or undefined when it runs from the sources. */
export function buildId(): string | undefined {
  return typeof HARNESS_BUILD_ID === "string" ? HARNESS_BUILD_ID : undefined;
}

/**
 * Load the scenario files in order (loadScenario's checks and errors), from the cache where it
 * holds them unchanged for this build. `build` and `cacheFile` are for tests.
 */
export async function loadScenarios(files: string[], build = buildId(), cacheFile = scenarioCacheFile()): Promise<Scenario[]> {
  if (build === undefined) {
    const { loadScenario } = await import("./load.ts");
    return files.map(loadScenario);
  }
  const entries = readCache(cacheFile);
  let changed = false;
  const out: Scenario[] = [];
  for (const file of files) {
    const key = resolve(file);
    const display = relative(process.cwd(), file) || file;
    const hit = entries[key];
    if (hit && unchanged(hit, build)) {
      out.push({ ...hit.scenario, file: display });
      continue;
    }
    const { loadScenarioAndInputs } = await import("./load.ts");
    const { scenario, inputs } = loadScenarioAndInputs(file);
    const stamps = inputs.map(stamp);
    if (stamps.every((s): s is Stamp => s !== undefined)) {
      entries[key] = { build, inputs: stamps, scenario };
      changed = true;
    }
    out.push(scenario);
  }
  if (changed) {
    // Entries of other builds, or of files that are gone (a test's temp dir), are dropped.
    for (const [key, entry] of Object.entries(entries)) if (entry.build !== build || stamp(key) === undefined) delete entries[key];
    writeCache(cacheFile, entries);
  }
  return out;
}
