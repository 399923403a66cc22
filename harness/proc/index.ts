/**
 * Child processes and temp dirs that must not outlive the harness. Used for etcd, `harness serve`
 * children, and any other executable (luajit workers, ...): nothing here knows what it runs.
 *
 *   const p = spawnOwned("/usr/bin/etcd", args, { stdio: ["ignore", "ignore", "pipe"] });
 *   p.child.stderr?.on("data", ...);      // the node ChildProcess, streams as asked for
 *   await p.exited;                       // {code, signal} of the child, or {error} if it could not start
 *   await p.stop();                       // SIGTERM to its whole group, SIGKILL after 2 s, wait until gone
 *
 *   const dir = ownedTempDir("etcd");     // /tmp/harness-etcd-<pid>-XXXXXX
 *   await dir.remove();
 *
 * Guarantees:
 * - Each child leads a process group of its own (setsid). stop() and signal() reach the whole
 *   group, so a wrapper script that does not `exec` its program is stopped with the program. A
 *   Ctrl-C on the terminal reaches only the harness, which stops children in its own order.
 * - Parent-death watch: the first owned thing starts a small reaper process (reaper.ts) that
 *   holds a pipe from this process. When this process ends in any way, `kill -9` included, the
 *   pipe closes and the reaper stops every group still owned (SIGTERM, SIGKILL after 1 s) and
 *   deletes every dir still owned.
 * - On a normal exit (process.exit, end of the event loop) a synchronous 'exit' handler kills
 *   what is still owned and deletes the dirs, without waiting for the reaper.
 * - Temp dirs carry their owner's pid in the name; the first ownedTempDir() of a process deletes
 *   the `harness-*` dirs of owners that no longer run (sweepDeadOwners).
 * - A child whose leader exits on its own has the rest of its group stopped too.
 *
 * No signal handlers are installed here: what a signal means is the caller's decision (the CLI
 * turns SIGINT/SIGTERM/SIGHUP into an orderly stop, harness/cli/interrupt.ts).
 */

import { groupAlive, owned, pollUntil, signalGroup } from "./owned.ts";

export { spawnOwned, OwnedProcess, type ExitStatus, type SpawnOwnedOptions } from "./child.ts";
export { ownedTempDir, sweepDeadOwners, type OwnedDir } from "./temp-dir.ts";
export { owned, pidRuns } from "./owned.ts";
export { reaperWatch } from "./reaper.ts";

/** Orderly closes that stopAllOwned runs first (each once); see closeFirstOnStop. */
const closers = new Set<() => Promise<void>>();

/**
 * Have stopAllOwned run `close` before it signals anything: for an owner of processes that can end
 * its own children (a master that reaps the workers it forked). A group stopped by a signal
 * leaves such grandchildren as zombies for init to collect, which some inits do seconds later.
 */
export function closeFirstOnStop(close: () => Promise<void>): void {
  closers.add(close);
}

/**
 * Run the orderly closes (up to graceMs), then stop every group still owned (SIGTERM, then SIGKILL
 * after graceMs) and wait until they are gone. For a command's last act: whatever it forgot is
 * stopped before it exits.
 */
export async function stopAllOwned(graceMs = 2000): Promise<void> {
  if (closers.size > 0) {
    const closing = [...closers].map((close) => close());
    closers.clear();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(closing), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
  }
  const { groups } = owned();
  if (groups.length === 0) return;
  for (const g of groups) signalGroup(g, "SIGTERM");
  await pollUntil(() => !groups.some(groupAlive), Date.now() + graceMs);
  for (const g of groups) if (groupAlive(g)) signalGroup(g, "SIGKILL");
}
