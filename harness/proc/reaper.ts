/**
 * The parent-death watch. One small `node` process per harness process (started on first use, in
 * its own session so a Ctrl-C on the terminal does not reach it) reads lines on a pipe from its
 * owner: `g <pgid>` / `G <pgid>` register and forget a process group, `d <path>` / `D <path>` a
 * directory. When the pipe ends - the owner exited, normally or by `kill -9` - it sends SIGTERM to
 * every group still registered, SIGKILL to what is left after a second, removes the directories,
 * and exits. Nothing survives its owner, whatever the owner died of.
 *
 * The source runs through `node -e` so it works with no build step and after any bundling.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { groupHasLiving } from "./owned.ts";

/** Milliseconds between SIGTERM and SIGKILL once the owner is gone. */
export const REAPER_GRACE_MS = 1000;

const REAPER_SOURCE = `
const fs = require("node:fs");
process.title = "harness-reaper " + process.argv[1];
const groups = new Set(), dirs = new Set();
let buf = "";
const alive = (g) => (${groupHasLiving.toString()})(g, fs);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function reap() {
  for (const g of groups) { try { process.kill(-g, "SIGTERM"); } catch {} }
  for (let t = Date.now(); [...groups].some(alive) && Date.now() - t < ${REAPER_GRACE_MS}; ) await sleep(20);
  for (const g of groups) { if (alive(g)) { try { process.kill(-g, "SIGKILL"); } catch {} } }
  for (let t = Date.now(); [...groups].some(alive) && Date.now() - t < 500; ) await sleep(20);
  for (const d of dirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch {} }
  process.exit(0);
}
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buf += chunk;
  for (let i; (i = buf.indexOf("\\n")) >= 0; ) {
    const line = buf.slice(0, i), op = line[0], arg = line.slice(2);
    buf = buf.slice(i + 1);
    if (op === "g") groups.add(Number(arg)); else if (op === "G") groups.delete(Number(arg));
    else if (op === "d") dirs.add(arg); else if (op === "D") dirs.delete(arg);
  }
});
process.stdin.on("end", reap);
process.stdin.on("error", reap);
`;

let reaper: ChildProcess | undefined;
let failed = false;

function channel(): ChildProcess | undefined {
  if (reaper || failed) return reaper;
  try {
    const child = spawn(process.execPath, ["-e", REAPER_SOURCE, `owner ${process.pid}`], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
      // Nothing from the owner's environment (NODE_OPTIONS loaders, ...) is needed or wanted.
      env: { PATH: process.env.PATH ?? "" },
    });
    child.on("error", () => {
      failed = true;
      reaper = undefined;
    });
    child.stdin!.on("error", () => undefined);
    // The watch must never keep its owner alive.
    child.unref();
    (child.stdin as unknown as { unref(): void }).unref();
    reaper = child;
  } catch {
    failed = true;
  }
  return reaper;
}

function send(line: string): void {
  const child = channel();
  if (child?.stdin && !child.stdin.destroyed) child.stdin.write(line + "\n");
}

export const reaperWatch = {
  addGroup: (pgid: number): void => send(`g ${pgid}`),
  removeGroup: (pgid: number): void => send(`G ${pgid}`),
  addDir: (path: string): void => send(`d ${path}`),
  removeDir: (path: string): void => send(`D ${path}`),
  /** The reaper's pid, once one was started (tests check it outlives nothing). */
  get pid(): number | undefined {
    return reaper?.pid;
  },
};
