import { existsSync, mkdtempSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import type { GatewayVersion, TableOrder } from "../gateway/engine.ts";
import type { VersionProfile } from "../gateway/versions/profile.ts";
import type { Scenario } from "../runner/scenario.ts";
import { makeDirs } from "./output.ts";
import { UsageError } from "./usage.ts";

/**
 * Parse a version list option into profiles; `allMeansEverything` for commands where candidates
 * belong in "all". The profiles are imported here, not at the top: --help and bad usage do not need them.
 */
export async function profilesOption(option: string, spec: string, allMeansEverything = false): Promise<VersionProfile[]> {
  const { parseVersionList, PROFILES, UnknownVersionError } = await import("../gateway/versions/index.ts");
  if (allMeansEverything && spec === "all") return [...PROFILES];
  try {
    return parseVersionList(spec);
  } catch (e) {
    if (e instanceof UnknownVersionError) throw new UsageError(`${option}: ${e.message}`);
    throw e;
  }
}

export function storeOption(value: string): "etcd" | "memory" {
  if (value !== "etcd" && value !== "memory") throw new UsageError(`--store: expected etcd or memory, got "${value}"`);
  return value;
}

/**
 * Make sure a command can write into `dir` before it does any work: created if missing, then a
 * probe entry is made and removed. Anything else is bad input (exit 2), named in one line.
 */
export function writableDirOption(option: string, dir: string): string {
  try {
    makeDirs(dir);
    rmdirSync(mkdtempSync(join(dir, ".harness-write-check-")));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "EEXIST" || err.code === "ENOTDIR" ? "it is a file, or under one" : err.code === "EACCES" || err.code === "EPERM" || err.code === "EROFS" ? `no permission to write there (${err.code})` : `cannot create it (${err.code ?? err.message})`;
    throw new UsageError(`${option} ${dir}: cannot write reports there: ${why}`);
  }
  return dir;
}

export function intOption(name: string, v: string, min = 0): number {
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${name}: expected a whole number${min > 0 ? ` >= ${min}` : ""}, got "${v}"`);
  return Number(v);
}

/** What selects the engine and, for `lua`, where APISIX's Lua comes from. */
export interface EngineCliOptions {
  engine: string;
  apisix?: string;
  luaDeps?: string;
  workers: string;
  /** hash (default) or sorted: how the engine walks tables. */
  order?: string;
}

export function orderOption(value: string | undefined): TableOrder {
  if (value === undefined || value === "hash" || value === "sorted") return value ?? "hash";
  throw new UsageError(`--order: expected hash or sorted, got "${value}"`);
}

/** ../shared/<name> beside the project, where this workspace keeps APISIX's trees and libraries. */
function sharedDefault(name: string): string | undefined {
  const dir = fileURLToPath(new URL(`../../../shared/${name}`, import.meta.url));
  return existsSync(dir) ? dir : undefined;
}

export function addEngineOptions(cmd: Command): Command {
  return cmd
    .option("--engine <kind>", "model (our TypeScript model of APISIX) or lua (APISIX's own Lua, run under LuaJIT)", "model")
    .option("--apisix <dir>", "lua engine: a git checkout of apache/apisix (versions are refs, or `worktree`) or a folder of <version>/apisix trees (default: ../shared/apisix-src)")
    .option("--lua-deps <dir>", "lua engine: lua-resty-healthcheck, lua-resty-timer and lua-resty-balancer at their tags (default: ../shared/lua-deps)")
    .option("--workers <n>", "nginx worker processes, each with its own config objects, pools and timers", "1")
    .option("--order <order>", "how tables are walked: hash (LuaJIT's pairs() order, decided by --seed) or sorted (key order, on either engine)", "hash");
}

export function engineKind(o: EngineCliOptions): "model" | "lua" {
  if (o.engine !== "model" && o.engine !== "lua") throw new UsageError(`--engine: expected model or lua, got "${o.engine}"`);
  return o.engine;
}

export function workersOption(o: EngineCliOptions): number {
  engineKind(o);
  return intOption("--workers", o.workers, 1);
}

/**
 * Parse `--versions` for the chosen engine. Model: profile names, `all` (the four releases),
 * `candidates`, `everything`. Lua: version folders or git refs, `worktree`, each with optional
 * `+patch.diff`s; `all` = the four releases.
 */
export async function versionsOption(option: string, spec: string, o: EngineCliOptions, allMeansEverything = false): Promise<GatewayVersion[]> {
  return (await checkVersionsOption(option, spec, o, allMeansEverything))();
}

/**
 * versionsOption in two steps: what the user gave is checked now (bad input throws), the
 * engine's code loads when the returned function is called. A command can start etcd in between,
 * so that it boots while the model engine loads.
 */
export async function checkVersionsOption(option: string, spec: string, o: EngineCliOptions, allMeansEverything = false): Promise<() => Promise<GatewayVersion[]>> {
  const entries = spec.split(",").map((s) => s.trim());
  if (entries.some((e) => e === "")) throw new UsageError(`${option}: empty entry in "${spec}"`);
  const order = orderOption(o.order);
  if (engineKind(o) === "model") {
    const profiles = await profilesOption(option, spec, allMeansEverything);
    return async () => {
      // Imported here, not at the top: every command's definition imports this file, --help too.
      const [{ inOrder }, { modelVersion }] = await Promise.all([import("../gateway/engine.ts"), import("../gateway/model-engine.ts")]);
      return profiles.map((p) => inOrder(modelVersion(p), order));
    };
  }
  if (entries.some((e) => e === "candidates" || e === "everything")) {
    throw new UsageError(`${option}: fix candidates are model profiles; on the lua engine give a fix as a patch, e.g. 3.16.0+fix.diff`);
  }
  const { RELEASES } = await import("../gateway/versions/index.ts");
  const names = [...new Set(entries.flatMap((e) => (e === "all" || e === "releases" ? RELEASES.map((r) => r.name) : [e])))];
  const apisix = o.apisix ?? sharedDefault("apisix-src");
  const luaDeps = o.luaDeps ?? sharedDefault("lua-deps");
  if (!apisix) throw new UsageError("--engine lua needs --apisix DIR: a git checkout of apache/apisix, or a folder of <version>/apisix trees");
  if (!luaDeps) throw new UsageError("--engine lua needs --lua-deps DIR: lua-resty-healthcheck, lua-resty-timer and lua-resty-balancer at their tags");
  // The sources are checked as they are found (a ref or patch that is not there is bad input).
  const [{ inOrder }, { luaVersions }] = await Promise.all([import("../gateway/engine.ts"), import("../gateway/lua/lua-engine.ts")]);
  const versions = luaVersions(names, { apisix, luaDeps }).map((v) => inOrder(v, order));
  return async () => versions;
}

/** The scenario files under paths, loaded and checked; a mistake in one is bad input (one line). */
export async function scenariosOption(paths: string[]): Promise<Scenario[]> {
  const [{ findScenarioFiles, ScenarioError }, { loadScenarios }] = await Promise.all([import("../runner/scenario-files.ts"), import("../runner/scenario-cache.ts")]);
  try {
    return await loadScenarios(findScenarioFiles(paths));
  } catch (e) {
    if (e instanceof ScenarioError) throw new UsageError(e.message);
    throw e;
  }
}
