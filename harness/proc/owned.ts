/**
 * What this process owns right now: process groups and temp directories. Each is registered twice:
 * here, for the synchronous 'exit' handler (process.exit, an uncaught error), and with the reaper,
 * for deaths no handler sees (kill -9, a crash of node itself).
 */

import * as fs from "node:fs";
import { reaperWatch } from "./reaper.ts";

const groups = new Set<number>();
const dirs = new Set<string>();
let exitHandler = false;

function onExit(): void {
  // No waiting is possible here: kill outright, then remove the directories.
  for (const g of groups) signalGroup(g, "SIGKILL");
  for (const d of dirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      // the reaper tries again once the groups are gone
    }
  }
}

function installExitHandler(): void {
  if (exitHandler) return;
  exitHandler = true;
  process.on("exit", onExit);
}

export function ownGroup(pgid: number): void {
  installExitHandler();
  groups.add(pgid);
  reaperWatch.addGroup(pgid);
}

export function disownGroup(pgid: number): void {
  if (groups.delete(pgid)) reaperWatch.removeGroup(pgid);
}

export function ownDir(path: string): void {
  installExitHandler();
  dirs.add(path);
  reaperWatch.addDir(path);
}

export function disownDir(path: string): void {
  if (dirs.delete(path)) reaperWatch.removeDir(path);
}

/** Send a signal to every process of a group; false when the group is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    // EPERM: a member exists but is not ours to signal; it is alive all the same.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A process of the group still runs. A zombie does not count: it is dead and only waits for its
 * parent (init, for orphans) to collect it, which some inits do only once a second. Self-contained
 * (it only uses its arguments), so the reaper runs the same code (see reaper.ts).
 */
export function groupHasLiving(pgid: number, fsys: Pick<typeof fs, "readdirSync" | "readFileSync">): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (process.platform !== "linux") return true;
  let pids: string[];
  try {
    pids = fsys.readdirSync("/proc").filter((n) => /^\d+$/.test(n));
  } catch {
    return true;
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = fsys.readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z") return true;
  }
  return false;
}

export function groupAlive(pgid: number): boolean {
  return groupHasLiving(pgid, fs);
}

/** Whether one process runs: it exists and is not a zombie waiting to be collected (Linux's /proc). */
export function pidRuns(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

/**
 * Wait until `done()` holds or the deadline (ms since the epoch) passes; says whether it held.
 * Looks at growing intervals from 1 ms up to 20 ms: a stop is on the path of every command's
 * exit, and a fixed 20 ms poll was most of it.
 */
export async function pollUntil(done: () => boolean, deadline: number): Promise<boolean> {
  for (let pause = 1; !done() && Date.now() < deadline; pause = Math.min(2 * pause, 20)) await new Promise((r) => setTimeout(r, pause));
  return done();
}

/** Groups and directories currently owned (for the CLI's last check and for tests). */
export function owned(): { groups: number[]; dirs: string[] } {
  return { groups: [...groups], dirs: [...dirs] };
}
