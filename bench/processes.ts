/**
 * Whole-process measurements: wall time from spawn to exit of the commands a user types, and the
 * peak memory of one, in this tree and (optionally) in a baseline tree, alternating within each
 * round so both see the same machine. Ratios are to `node -e 0` measured in the same rounds.
 */
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PEAK_RSS = fileURLToPath(new URL("./peak-rss.cjs", import.meta.url));

export interface Tree {
  label: string;
  dir: string;
}

export interface Command {
  name: string;
  args: string[];
  /** Expected exit code (bad usage: 2). */
  exit: number;
  /** The environment, when not the bench's own. */
  env?: NodeJS.ProcessEnv;
  /** This command is another one run without NODE_EXTRA_CA_CERTS: that one's name. */
  variantOf?: string;
}

/**
 * Node reads the file NODE_EXTRA_CA_CERTS names at every start, before any script runs: where it
 * is set (it is on the machines this project was measured on) it is most of `node -e 0`.
 */
export const CA_VARIABLE = "NODE_EXTRA_CA_CERTS";

/** A line for under a table that has the rows without the variable, or undefined when it is unset. */
export function caNote(): string | undefined {
  const file = process.env[CA_VARIABLE];
  if (!file) return undefined;
  return `This machine sets \`${CA_VARIABLE}=${file}\`. Node reads that file at every start, before any script runs, so every command pays it; the rows "without" run the same commands with it unset, their ratio is to \`node -e 0\` without it too.`;
}

/** The commands of the start-up table, as `node <args>` in a tree. `out` is a scratch directory for reports. */
export function commands(out: string): Command[] {
  const base: Command[] = [
    { name: "`node -e 0`", args: ["-e", "0"], exit: 0 },
    { name: "`harness --help`", args: ["bin/harness.js", "--help"], exit: 0 },
    { name: "`harness repro --bogus` (bad usage)", args: ["bin/harness.js", "repro", "--bogus"], exit: 2 },
    { name: "`harness repro` (real etcd, cold, 4 versions)", args: ["bin/harness.js", "repro", "--out", out], exit: 0 },
    { name: "`harness repro --store memory`", args: ["bin/harness.js", "repro", "--store", "memory", "--out", out], exit: 0 },
    { name: "`harness run scenarios/ --versions all` (real etcd)", args: ["bin/harness.js", "run", "scenarios/", "--versions", "all", "--out", out], exit: 0 },
  ];
  if (!process.env[CA_VARIABLE]) return base;
  // The start-up rows again with the variable unset, so the start-up of the harness itself shows.
  const env = { ...process.env };
  delete env[CA_VARIABLE];
  const without = (c: Command): Command => ({ ...c, name: `${c.name}, without \`${CA_VARIABLE}\``, env, variantOf: c.name });
  return [...base, ...base.slice(0, 4).map(without)];
}

/** Run `node <args>` in dir; resolves with the wall time in ms. */
export function timeNode(dir: string, args: string[], expectExit: number, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    let stderr = "";
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"], env });
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("close", (code) => {
      const ms = performance.now() - t0;
      if (code !== expectExit) reject(new Error(`node ${args.join(" ")} in ${dir} exited ${code}, expected ${expectExit}: ${stderr.slice(-2000)}`));
      else resolve(ms);
    });
  });
}

/** Peak resident memory (MiB) of `node <args>`, read by a preloaded script at exit. */
export async function peakRssMiB(dir: string, args: string[], expectExit: number): Promise<number> {
  const scratch = mkdtempSync(join(tmpdir(), "harness-bench-rss-"));
  const file = join(scratch, "rss");
  try {
    await timeNode(dir, ["--require", PEAK_RSS, ...args], expectExit, { ...process.env, HARNESS_BENCH_RSS_FILE: file });
    return Number(readFileSync(file, "utf8")) / 1024;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The project as it was at a git ref, in a temp dir. It shares this tree's node_modules when both
 * lock files agree, and gets its own `npm ci` when they do not (a baseline from before a
 * dependency was added or removed could not load otherwise).
 */
export function baselineTree(ref: string): Tree & { remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "harness-bench-baseline-"));
  const sha = execFileSync("git", ["-C", ROOT, "rev-parse", "--short", ref], { encoding: "utf8" }).trim();
  execFileSync("sh", ["-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", ROOT, sha, dir]);
  const lock = (d: string): string => readFileSync(join(d, "package-lock.json"), "utf8");
  if (lock(dir) === lock(ROOT)) symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  else execFileSync("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, stdio: ["ignore", "ignore", "inherit"] });
  // The lifecycle rate and the lua run are measured by this tree's scripts, which only need
  // checkLifecycle, and InprocTarget with the lua engine (a baseline without it cannot run the latter).
  for (const script of ["bench/lifecycle-rate.ts", "bench/lua-run-times.ts"]) copyFileSync(join(ROOT, script), join(dir, script));
  return { label: sha, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Wall times (ms) per tree dir, then per command name. */
export type WallTimes = Map<string, Map<string, number[]>>;

/**
 * Wall times of `cmds` in each tree over `rounds` rounds, after one warm-up run of each (builds,
 * disk caches). Within a round each command runs in every tree in turn, and which tree goes
 * first alternates, so neither always runs right after the other. `afterRound` runs at the end
 * of each round (with that round's tree order); `logged` names the command the progress line shows.
 */
export async function timeCommands(
  trees: Tree[],
  cmds: Command[],
  rounds: number,
  log: (s: string) => void,
  logged: Command,
  afterRound?: (order: Tree[]) => Promise<void>,
): Promise<WallTimes> {
  const wall: WallTimes = new Map(trees.map((t) => [t.dir, new Map(cmds.map((c) => [c.name, []]))]));
  for (const t of trees) for (const c of cmds) await timeNode(t.dir, c.args, c.exit, c.env);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? [...trees].reverse() : trees;
    for (const c of cmds) for (const t of order) wall.get(t.dir)!.get(c.name)!.push(await timeNode(t.dir, c.args, c.exit, c.env));
    await afterRound?.(order);
    log(`round ${round + 1}/${rounds}: ` + trees.map((t) => `${t.label}: ${logged.name} ${(wall.get(t.dir)!.get(logged.name)!.at(-1)! / 1000).toFixed(2)} s`).join("; "));
  }
  return wall;
}
