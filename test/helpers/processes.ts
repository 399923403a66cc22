import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** PIDs of running etcd processes (to prove a command left none behind). */
export function etcdPids(): number[] {
  try {
    return execFileSync("pgrep", ["-x", "etcd"], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function hasEtcdBinary(): boolean {
  if (process.env.ETCD_BIN) return existsSync(process.env.ETCD_BIN);
  try {
    execFileSync("which", ["etcd"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgid: number;
}

function stat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(")");
  const f = text.slice(close + 2).split(" ");
  return { pid, comm: text.slice(text.indexOf("(") + 1, close), state: f[0]!, ppid: Number(f[1]), pgid: Number(f[2]) };
}

function allStats(): ProcStat[] {
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .map((n) => stat(Number(n)))
    .filter((s): s is ProcStat => s !== undefined);
}

/** Every process of a process group, zombies included (a zombie still waits for someone to collect it). */
export function groupMembers(pgid: number): { pid: number; state: string }[] {
  return allStats()
    .filter((s) => s.pgid === pgid)
    .map((s) => ({ pid: s.pid, state: s.state }));
}

/** Still running: present and not a zombie (a zombie is dead, it only waits for init to collect it). */
export function alive(pid: number): boolean {
  const s = stat(pid);
  return s !== undefined && s.state !== "Z";
}

/** Every living descendant of a process: children, grandchildren, ... with their command names. */
export function descendants(pid: number): { pid: number; ppid: number; comm: string; cmdline: string }[] {
  const stats = allStats().filter((s) => s.state !== "Z");
  const out: { pid: number; ppid: number; comm: string; cmdline: string }[] = [];
  const walk = (parent: number): void => {
    for (const s of stats.filter((x) => x.ppid === parent)) {
      let cmdline = "";
      try {
        cmdline = readFileSync(`/proc/${s.pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
      } catch {
        // gone meanwhile
      }
      out.push({ pid: s.pid, ppid: s.ppid, comm: s.comm, cmdline });
      walk(s.pid);
    }
  };
  walk(pid);
  return out;
}

/** Temp dirs a harness process owns (harness-<kind>-<pid>-XXXXXX). */
export function ownedDirsOf(pid: number): string[] {
  return readdirSync(tmpdir())
    .filter((n) => new RegExp(`^harness-[a-z0-9]+-${pid}-[A-Za-z0-9]{6}$`).test(n))
    .map((n) => join(tmpdir(), n));
}

/** Poll until `check` holds or `ms` pass; returns whether it held. */
export async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const t0 = Date.now();
  for (;;) {
    if (check()) return true;
    if (Date.now() - t0 > ms) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Living etcd processes a given harness process started (their data dir carries its pid). */
export function etcdsOf(ownerPid: number): number[] {
  return etcdPids().filter((pid) => {
    try {
      return alive(pid) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`/harness-etcd-${ownerPid}-`);
    } catch {
      return false;
    }
  });
}
