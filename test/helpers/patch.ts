import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SOURCES } from "./lua.ts";

/**
 * Write a unified diff (patch -p1 style) that changes one file of an APISIX tree: `edit` gets the
 * file's text and returns the changed text. Returns the diff's path.
 */
export function makePatch(dir: string, name: string, version: string, file: string, edit: (text: string) => string): string {
  const original = readFileSync(join(SOURCES.apisix, version, file), "utf8");
  const changed = edit(original);
  if (changed === original) throw new Error(`${name}: the edit changed nothing in ${file}`);
  const a = join(dir, `${name}.orig`);
  const b = join(dir, `${name}.new`);
  writeFileSync(a, original);
  writeFileSync(b, changed);
  const r = spawnSync("diff", ["-u", "--label", `a/${file}`, "--label", `b/${file}`, a, b], { encoding: "utf8" });
  const out = join(dir, `${name}.diff`);
  writeFileSync(out, r.stdout);
  return out;
}
