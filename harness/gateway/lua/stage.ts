import { symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { ownedTempDir } from "../../proc/index.ts";
import { RUNTIME_DIR } from "./lua-worker.ts";
import type { LuaTree } from "./sources.ts";

/**
 * Where a LuaJIT master runs: a folder of links with fixed names to the runtime, the APISIX tree
 * and the libraries, loaded through those short relative paths. LuaJIT hashes tables and
 * functions by address, and a path string of another length moves every later allocation, and
 * with it the order pairs() walks such keys: without the links, one seed walked the pools in
 * another order in another checkout (one commit in two directories: 3 and 4 CHANCE in
 * `props --diff --runs 100 --seed 1 --version 3.18.0`). With them no string in the Lua heap says
 * where anything is checked out (test/lua/determinism.test.ts).
 */
export interface LuaStage {
  /** The master's working directory. */
  cwd: string;
  /** main.lua, relative to cwd. */
  main: string;
  /** The boot message's apisix_root and dep_dirs, relative to cwd. */
  apisixRoot: string;
  depDirs: string[];
}

const stages = new Map<string, LuaStage>();

/** The stage of a tree, made once per process (removed with the process's other temp dirs). */
export function luaStage(tree: Pick<LuaTree, "apisixRoot" | "depDirs">): LuaStage {
  const key = JSON.stringify([resolve(tree.apisixRoot), tree.depDirs.map((d) => resolve(d))]);
  let stage = stages.get(key);
  if (!stage) {
    const dir = ownedTempDir("luastage").path;
    symlinkSync(resolve(RUNTIME_DIR), join(dir, "rt"));
    symlinkSync(resolve(tree.apisixRoot), join(dir, "apisix"));
    const depDirs = tree.depDirs.map((d, i) => {
      symlinkSync(resolve(d), join(dir, `dep${i + 1}`));
      return `dep${i + 1}`;
    });
    stage = { cwd: dir, main: "rt/main.lua", apisixRoot: "apisix", depDirs };
    stages.set(key, stage);
  }
  return stage;
}
