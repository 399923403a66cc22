import { parseVersionList, PROFILES, UnknownVersionError } from "../gateway/versions/index.ts";
import type { VersionProfile } from "../gateway/versions/profile.ts";
import { UsageError } from "./usage.ts";

/** Parse a version list option into profiles; `allMeansEverything` for commands where candidates belong in "all". */
export function profilesOption(option: string, spec: string, allMeansEverything = false): VersionProfile[] {
  if (allMeansEverything && spec === "all") return [...PROFILES];
  try {
    return parseVersionList(spec);
  } catch (e) {
    if (e instanceof UnknownVersionError) throw new UsageError(`${option}: ${e.message}`);
    throw e;
  }
}

export function storeOption(value: string): "etcd" | "memory" {
  if (value !== "etcd" && value !== "memory") throw new UsageError(`--store: expected etcd or memory, got "${value}"`);
  return value;
}
