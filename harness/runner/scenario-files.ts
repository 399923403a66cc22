/**
 * Which files a command's scenario paths name, and the error a scenario file's mistake is. Kept
 * apart from the loader so that finding files (and a cache hit) does not load the YAML parser.
 */
import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

/** A mistake in a scenario file: where it is and what was expected. */
export class ScenarioError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}:${col}: ${detail}`);
  }
}

/**
 * Expand files and directories into scenario files (*.yaml, *.yml), sorted within a directory. A
 * file named twice (or through a directory and by name) is kept once, where it first appears.
 */
export function findScenarioFiles(paths: string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (f: string): void => {
    let key: string;
    try {
      key = realpathSync(f);
    } catch {
      key = resolve(f);
    }
    if (seen.has(key)) return;
    seen.add(key);
    out.push(f);
  };
  for (const p of paths) {
    if (!existsSync(p)) throw new ScenarioError(p, 1, 1, "no such file or directory");
    let entries: string[] | undefined;
    try {
      entries = statSync(p).isDirectory() ? readdirSync(p).sort() : undefined;
    } catch (e) {
      throw new ScenarioError(p, 1, 1, `cannot read the directory: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (entries) {
      for (const f of entries) if (/\.ya?ml$/.test(f)) add(join(p, f));
    } else add(p);
  }
  return out;
}
