import { fallbackWithoutGetNode, suggested } from "./candidates.ts";
import type { VersionProfile } from "./profile.ts";
import { v3_15_0, v3_16_0, v3_17_0, v3_18_0 } from "./releases.ts";

export type { VersionProfile } from "./profile.ts";

export const RELEASES: readonly VersionProfile[] = [v3_15_0, v3_16_0, v3_17_0, v3_18_0];
export const CANDIDATES: readonly VersionProfile[] = [suggested, fallbackWithoutGetNode];
export const PROFILES: readonly VersionProfile[] = [...RELEASES, ...CANDIDATES];

export class UnknownVersionError extends Error {}

export function getProfile(name: string): VersionProfile {
  const p = PROFILES.find((v) => v.name === name);
  if (!p) throw new UnknownVersionError(`unknown version "${name}" (known: ${PROFILES.map((v) => v.name).join(", ")})`);
  return p;
}

/**
 * Parse a `--versions` list: names separated by commas, `all` (the four releases), `candidates`,
 * or `everything`.
 */
export function parseVersionList(spec: string): VersionProfile[] {
  const out: VersionProfile[] = [];
  for (const raw of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const group = raw === "all" || raw === "releases" ? RELEASES : raw === "candidates" ? CANDIDATES : raw === "everything" ? PROFILES : [getProfile(raw)];
    for (const p of group) if (!out.includes(p)) out.push(p);
  }
  if (out.length === 0) throw new UnknownVersionError(`no version given (known: ${PROFILES.map((v) => v.name).join(", ")})`);
  return out;
}
