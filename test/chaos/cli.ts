/**
 * Driving the harness CLI the way a user (or CI) abuses it: started in a process group of its
 * own (as a shell starts a job), interrupted or killed at a point of the test's choosing, and then
 * checked for anything it left: processes it started (at any depth) and its temp dirs.
 */
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { alive, descendants, eventually, ownedDirsOf } from "../helpers/processes.ts";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface Launched {
  sub: ResultPromise<{ reject: false; detached: true; cwd: string; env: Record<string, string> }>;
  pid: number;
  /** Everything printed so far on stdout and stderr. */
  out(): string;
  /** Resolves when the output matches (or rejects when the command ends first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
}

export function launch(args: string[], env: Record<string, string> = {}): Launched {
  const sub = execa("node", ["bin/harness.js", ...args], { cwd: ROOT, reject: false, detached: true, env: { NO_COLOR: "1", ...env } });
  let text = "";
  sub.stdout!.on("data", (c: Buffer) => (text += c.toString()));
  sub.stderr!.on("data", (c: Buffer) => (text += c.toString()));
  return {
    sub,
    pid: sub.pid!,
    out: () => text,
    waitFor: (re, timeoutMs = 20_000) =>
      new Promise<void>((resolve, reject) => {
        const t0 = Date.now();
        const poll = (): void => {
          if (re.test(text)) return resolve();
          if (sub.exitCode !== null || Date.now() - t0 > timeoutMs) return reject(new Error(`never printed ${re}; output:\n${text}`));
          setTimeout(poll, 20);
        };
        poll();
      }),
  };
}

/** Milliseconds drawn at random in [0, max): a different point each time; the test prints it. */
export function randomPoint(max: number): number {
  return Math.floor(Math.random() * max);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * After the command ended (or was killed): within `ms`, nothing it started is alive, at any depth
 * (`tree` was taken while it ran), and no temp dir of its is left. Returns what was left, if any.
 */
export async function leftovers(pid: number, tree: { pid: number; cmdline: string }[], ms = 2000): Promise<string[]> {
  const gone = await eventually(() => tree.every((p) => !alive(p.pid)) && ownedDirsOf(pid).length === 0, ms);
  if (gone) return [];
  return [...tree.filter((p) => alive(p.pid)).map((p) => `process ${p.pid}: ${p.cmdline.slice(0, 120)}`), ...ownedDirsOf(pid).map((d) => `dir ${d}`)];
}

/** The command's process tree right now (harness children, their children, ...). */
export function treeOf(pid: number): { pid: number; comm: string; cmdline: string }[] {
  return descendants(pid);
}
