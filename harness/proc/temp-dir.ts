import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { disownDir, ownDir } from "./owned.ts";

/** `harness-<kind>-<owner pid>-<6 random characters>` in the system temp dir. */
const OWNED_NAME = /^harness-([a-z][a-z0-9]*)-(\d+)-[A-Za-z0-9]{6}$/;

export interface OwnedDir {
  readonly path: string;
  /** Delete it (and stop owning it). Idempotent. */
  remove(): Promise<void>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

let swept = false;

/**
 * Delete `harness-<kind>-<pid>-XXXXXX` temp dirs whose owner process is gone (left by a harness
 * that was killed before it could clean up, and whose reaper was killed too). Directories of live
 * processes and anything not named that way are left alone. Returns the paths removed.
 */
export function sweepDeadOwners(dir: string = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = OWNED_NAME.exec(name);
    if (!m || pidAlive(Number(m[2]))) continue;
    try {
      rmSync(join(dir, name), { recursive: true, force: true });
      removed.push(join(dir, name));
    } catch {
      // another user's, or being removed by someone else
    }
  }
  return removed;
}

/**
 * A fresh temp dir named after this process, deleted by remove(), by the exit handler, or by the
 * reaper if this process dies first. The first call in a process sweeps dead owners' dirs.
 */
export function ownedTempDir(kind: string): OwnedDir {
  if (!/^[a-z][a-z0-9]*$/.test(kind)) throw new Error(`temp dir kind must be lower-case letters and digits, got "${kind}"`);
  if (!swept) {
    swept = true;
    sweepDeadOwners();
  }
  const path = mkdtempSync(join(tmpdir(), `harness-${kind}-${process.pid}-`));
  ownDir(path);
  let removing: Promise<void> | undefined;
  return {
    path,
    remove() {
      removing ??= rm(path, { recursive: true, force: true }).finally(() => disownDir(path));
      return removing;
    },
  };
}
