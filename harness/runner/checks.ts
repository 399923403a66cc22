import type { CheckerNode } from "../gateway/engine.ts";
import type { CheckerTarget, PoolVersion } from "./scenario.ts";

/**
 * The judgements behind the checker, pool and per-tick assertions, apart from how a run gathers
 * what they judge: each says what is wrong, or nothing when the assertion holds.
 */

/**
 * A checker or pool version is the route's current one: its modifiedIndex, then the instance's
 * `_nodes_ver` where DNS bumped one (upstream_utils.version concatenates them,
 * healthcheck_manager.lua:348@3.18.0).
 */
export function isCurrentVersion(version: string, modifiedIndex: string | undefined): boolean {
  return modifiedIndex !== undefined && version.startsWith(modifiedIndex) && /^\d*$/.test(version.slice(modifiedIndex.length));
}

/** What is wrong with a pool entry's version (undefined: it is as wanted). */
export function poolVersionProblem(want: PoolVersion, version: string, modifiedIndex: string | undefined): string | undefined {
  const current = isCurrentVersion(version, modifiedIndex);
  const route = modifiedIndex === undefined ? "the route is gone" : `the route's modifiedIndex is ${modifiedIndex}`;
  if (want.kind === "current" && !current) return `at version ${version}, not the current one (${route})`;
  if (want.kind === "stale" && current) return `at version ${version}, the current one (${route}), expected a stale one`;
  if (want.kind === "exactly" && version !== want.version) return `at version ${version}, expected ${want.version}`;
  return undefined;
}

/**
 * Whether the checker working now is the one that worked at a mark. Identities are the checker
 * objects: the model's `checker#N`, the lua engine's table address (`checker@0x...`, with `#n`
 * where the collector gave a new table an address seen before).
 */
export function identityProblem(want: "kept" | "rebuilt", mark: string, then: string | undefined, now: string): string | undefined {
  if (then === undefined) return `had no working checker at mark ${mark}, so it was neither kept nor rebuilt since (now ${now})`;
  if (want === "kept" && now !== then) return `checker ${now} is not the one at mark ${mark} (${then}): it was rebuilt`;
  if (want === "rebuilt" && now === then) return `checker ${now} is still the one at mark ${mark}: it was kept`;
  return undefined;
}

/** A checker's target as scenarios write it: `ip:port`, or `hostname(ip:port)` when it has another hostname. */
export function showNode(n: { ip: string; port: number; hostname?: string | undefined }): string {
  return n.hostname !== undefined && n.hostname !== n.ip ? `${n.hostname}(${n.ip}:${n.port})` : `${n.ip}:${n.port}`;
}

/**
 * Whether a checker probes exactly these targets (their nodes resolved to `ip`), in any order. An entry with a hostname matches
 * only a node with that hostname; one without matches the address whatever the hostname. Named
 * entries pick their nodes first, so an unnamed one cannot take a node a named one needs.
 */
export function targetsProblem(wanted: (CheckerTarget & { ip: string })[], nodes: CheckerNode[]): string | undefined {
  const left = [...nodes];
  const missing: string[] = [];
  for (const w of [...wanted].sort((a, b) => Number(b.hostname !== undefined) - Number(a.hostname !== undefined))) {
    const i = left.findIndex((n) => n.ip === w.ip && n.port === w.port && (w.hostname === undefined || (n.hostname ?? n.ip) === w.hostname));
    if (i < 0) missing.push(w.text);
    else left.splice(i, 1);
  }
  if (missing.length === 0 && left.length === 0) return undefined;
  const parts = [missing.length ? `lacks ${missing.join(", ")}` : "", left.length ? `also probes ${left.map(showNode).join(", ")}` : ""].filter(Boolean);
  return `probes [${nodes.map(showNode).join(", ")}]: ${parts.join("; ")}`;
}

/** The matching lines each tick of a window owns: those from its time up to the next tick's. */
export function linesPerTick(ticks: number[], lineTimes: number[]): { at: number; lines: number }[] {
  return ticks.map((at, k) => {
    const next = ticks[k + 1] ?? Infinity;
    return { at, lines: lineTimes.filter((t) => t >= at && t < next).length };
  });
}

/** What is wrong with the per-tick counts (undefined: every tick has exactly `n`). `origin` re-bases the times shown. */
export function perTickProblem(counts: { at: number; lines: number }[], n: number, origin: number): string | undefined {
  if (counts.length === 0) return "no health-check manager tick in the window";
  const off = counts.filter((c) => c.lines !== n);
  if (off.length === 0) return undefined;
  return `${off.length} of ${counts.length} tick(s) had another count than ${n}: ${off.map((c) => `tick at ${c.at - origin} ms had ${c.lines}`).join(", ")}`;
}
