import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

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
