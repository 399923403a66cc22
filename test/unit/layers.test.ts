import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * Dependencies point down (developers' guide): cli -> runner/props/report -> targets ->
 * gateway/etcd/backends. Folders of harness/ by layer; a module may import its own folder, any
 * lower layer, and the few same-layer edges listed (each one an interface implemented or a result
 * read, never a call back up).
 */
const LAYER: Record<string, number> = {
  cli: 4,
  runner: 3,
  props: 3,
  report: 3,
  repro: 3,
  importer: 3,
  targets: 2,
  gateway: 1,
  etcd: 1,
  backends: 1,
  proc: 0,
  schema: 0,
  "errors.ts": 0,
};
const SAME_LAYER_ALLOWED = new Set([
  // The reports read what the runner produced (RunResult, Scenario).
  "report->runner",
  // A store on etcd implements the gateway's Store; the mock backends implement its Transport.
  "etcd->gateway",
  "backends->gateway",
]);

const ROOT = resolve(import.meta.dirname, "../../harness");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const topOf = (file: string): string => relative(ROOT, file).split("/")[0]!;

function upwardImports(): string[] {
  const out: string[] = [];
  for (const file of files(ROOT)) {
    const from = topOf(file);
    for (const m of readFileSync(file, "utf8").matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
      const target = resolve(dirname(file), m[1]!);
      if (!target.startsWith(ROOT + "/")) continue;
      const to = topOf(target);
      if (to === from) continue;
      const [a, b] = [LAYER[from], LAYER[to]];
      if (a === undefined || b === undefined) {
        out.push(`${relative(ROOT, file)}: folder ${a === undefined ? from : to} has no layer in this test`);
        continue;
      }
      if (b < a || (b === a && SAME_LAYER_ALLOWED.has(`${from}->${to}`))) continue;
      out.push(`${relative(ROOT, file)} imports ${m[1]} (${from} -> ${to})`);
    }
  }
  return out;
}

describe("module layers", () => {
  it("no module imports a higher layer (or an unlisted sibling)", () => {
    expect(upwardImports()).toEqual([]);
  });

  it("the check sees imports: every layer above the bottom imports something below it", () => {
    const seen = new Set<string>();
    for (const file of files(ROOT)) {
      for (const m of readFileSync(file, "utf8").matchAll(/from\s*"(\.{1,2}\/[^"]+)"/g)) seen.add(`${topOf(file)}->${topOf(resolve(dirname(file), m[1]!))}`);
    }
    for (const top of ["cli", "runner", "targets"]) expect([...seen].some((e) => e.startsWith(`${top}->`) && e !== `${top}->${top}`)).toBe(true);
  });
});
