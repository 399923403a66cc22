/**
 * Properties of a profile's `construct_upstream(instance)`, checked with fast-check over
 * schema-valid instances (`instanceArb`), each instance as the config cache builds it after a
 * refresh: a fresh JSON clone, without the runtime fields the request path attaches.
 *
 * - totality:    it returns an upstream (never nil + error, never a raise).
 * - agreement:   the upstream's nodes are the ones the request path resolves for the same instance.
 * - purity:      it leaves its argument as it was.
 * - idempotence: two calls on the same instance give the same result.
 *
 * A verdict carries the shrunk counterexample, the seed and the counterexample path, so a failure
 * can be replayed with `{seed, path}`.
 */
import { performance } from "node:perf_hooks";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import defaultHostsJson from "../../fixtures/hosts.json" with { type: "json" };
import { VirtualClock } from "../gateway/clock/virtual-clock.ts";
import { ErrorLog } from "../gateway/log/error-log.ts";
import type { ConstructResult } from "../gateway/plugins/ai-proxy-multi/construct-upstream.ts";
import { parseEndpointByPattern } from "../gateway/plugins/ai-proxy-multi/endpoint.ts";
import type { PluginEnv } from "../gateway/plugins/ai-proxy-multi/runtime-fields.ts";
import type { Instance } from "../gateway/plugins/ai-proxy-multi/types.ts";
import { Resolver } from "../gateway/resolver/resolver.ts";
import type { VersionProfile } from "../gateway/versions/profile.ts";
import { ARB_HOSTS, instanceArb, type ArbOptions } from "./arbitraries.ts";
import { stopOnAbort } from "./stop-on-abort.ts";

export type ConstructPropertyId = "totality" | "agreement" | "purity" | "idempotence";

export interface ConstructProperty {
  id: ConstructPropertyId;
  title: string;
}

export const CONSTRUCT_PROPERTIES: readonly ConstructProperty[] = [
  { id: "totality", title: "construct_upstream returns an upstream for every valid instance whose runtime fields a config refresh dropped" },
  { id: "agreement", title: "construct_upstream's nodes (host:port, domain) are the ones the request path resolves for the same instance" },
  { id: "purity", title: "construct_upstream leaves its argument unchanged" },
  { id: "idempotence", title: "two construct_upstream calls on the same instance give the same result" },
];

export interface PropertyVerdict {
  property: string;
  profile: string;
  holds: boolean;
  /** Runs actually made (up to and including the first failing one). */
  runs: number;
  seed: number;
  /** fast-check's counterexample path; replay with `{seed, path}`. */
  path?: string;
  /** The shrunk instance, as JSON. */
  counterexample?: unknown;
  /** What went wrong for the counterexample. */
  message?: string;
  wallMs: number;
}

export interface ConstructCheckOptions {
  runs: number;
  seed: number;
  /** Replay a failure: the `path` of an earlier verdict (with its `seed`). */
  path?: string;
  /** Stop early (the verdict is then meaningless; the caller checks the signal). */
  signal?: AbortSignal;
}

/**
 * Generator options that keep instances to configs the profile's release accepts: the 3.15/3.16
 * endpoint pattern mangles IPv6 literals and query-only endpoints, so they are left out there.
 */
export function arbOptionsFor(profile: VersionProfile): ArbOptions {
  return profile.parseEndpoint === parseEndpointByPattern ? { ipv6: false, queryWithoutPath: false } : {};
}

/** A fresh PluginEnv: fixture hosts plus ARB_HOSTS, an error log on a virtual clock. */
export function propertyEnv(): PluginEnv {
  const clock = new VirtualClock();
  return {
    resolver: new Resolver({ ...(defaultHostsJson as Record<string, string>), ...ARB_HOSTS }),
    log: new ErrorLog({ clock, level: "debug" }),
  };
}

/** The instance as the config cache builds it from the stored JSON: runtime fields gone. */
const refreshed = (instance: Instance): Instance => JSON.parse(JSON.stringify(instance)) as Instance;

type Outcome = { threw: string } | { result: ConstructResult };

function run(profile: VersionProfile, instance: Instance, env: PluginEnv): Outcome {
  try {
    return { result: profile.constructUpstream(instance, env) };
  } catch (e) {
    return { threw: e instanceof Error ? e.message : String(e) };
  }
}

function describeOutcome(o: Outcome): string {
  if ("threw" in o) return `raised "${o.threw}"`;
  return o.result.ok ? `an upstream with ${o.result.upstream.nodes.length} node(s)` : `nil, "${o.result.error}"`;
}

function describeInstance(i: Instance): string {
  const parts = [`provider ${i.provider}`];
  if (i.override?.endpoint !== undefined) parts.push(`endpoint ${i.override.endpoint}`);
  if (i.provider_conf?.region !== undefined) parts.push(`provider_conf.region ${i.provider_conf.region}`);
  return `instance "${i.name}" (${parts.join(", ")})`;
}

const addr = (n: { host: string; port: number; domain?: string | undefined }): string => `${n.host}:${n.port}${n.domain !== undefined ? ` (${n.domain})` : ""}`;
const addrs = (ns: readonly { host: string; port: number; domain?: string | undefined }[]): string[] => ns.map(addr).sort();

/** Where two JSON values differ, as `added x`, `removed y`, `changed z` (paths in dot notation). */
export function jsonDiff(before: unknown, after: unknown, path = ""): string[] {
  if (isDeepStrictEqual(before, after)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObj(before) && isObj(after)) {
    const out: string[] = [];
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    for (const k of keys) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in before)) out.push(`added ${p}`);
      else if (!(k in after)) out.push(`removed ${p}`);
      else out.push(...jsonDiff(before[k], after[k], p));
    }
    return out;
  }
  return [`changed ${path || "(root)"}`];
}

/**
 * One property on one instance with a fresh env: undefined when it holds, else what went wrong.
 * The instance handed in is never touched; each call works on its own refreshed clones.
 */
export function evaluateConstructProperty(profile: VersionProfile, propertyId: ConstructPropertyId, instance: Instance): string | undefined {
  const env = propertyEnv();
  const who = describeInstance(instance);
  switch (propertyId) {
    case "totality": {
      const o = run(profile, refreshed(instance), env);
      if ("threw" in o) return `construct_upstream raised for ${who}: ${o.threw}`;
      if (!o.result.ok) return `construct_upstream returned nil for ${who}: ${o.result.error}`;
      return undefined;
    }
    case "agreement": {
      const o = run(profile, refreshed(instance), env);
      if ("threw" in o || !o.result.ok) return undefined; // nothing to compare: totality's business
      const viaRequest = refreshed(instance);
      profile.fields.resolve(viaRequest, env);
      const expected = addrs(profile.fields.nodes(viaRequest) ?? []);
      const got = addrs(o.result.upstream.nodes);
      if (isDeepStrictEqual(got, expected)) return undefined;
      return `construct_upstream checks [${got.join(", ")}] but the request path resolves [${expected.join(", ")}] for ${who}`;
    }
    case "purity": {
      const arg = refreshed(instance);
      const before = structuredClone(arg);
      const o = run(profile, arg, env);
      const diff = jsonDiff(before, arg);
      if (isDeepStrictEqual(before, arg)) return undefined;
      return `construct_upstream modified its argument (${diff.join(", ") || "prototype or property order"}) for ${who}; it returned ${describeOutcome(o)}`;
    }
    case "idempotence": {
      const arg = refreshed(instance);
      const first = run(profile, arg, env);
      const firstCopy = structuredClone(first);
      const second = run(profile, arg, env);
      if (isDeepStrictEqual(firstCopy, second)) return undefined;
      const diff = jsonDiff(firstCopy, second);
      return `two construct_upstream calls on ${who} differ (${diff.join(", ")}): first ${describeOutcome(firstCopy)}, then ${describeOutcome(second)}`;
    }
    default:
      throw new Error(`unknown construct property "${String(propertyId)}" (known: ${CONSTRUCT_PROPERTIES.map((p) => p.id).join(", ")})`);
  }
}

class PropertyFailure extends Error {}

/** Check one property of `profile.constructUpstream` with fast-check (shrinking on failure). */
export async function checkConstructProperty(profile: VersionProfile, propertyId: ConstructPropertyId, opts: ConstructCheckOptions): Promise<PropertyVerdict> {
  if (!CONSTRUCT_PROPERTIES.some((p) => p.id === propertyId)) {
    throw new Error(`unknown construct property "${propertyId}" (known: ${CONSTRUCT_PROPERTIES.map((p) => p.id).join(", ")})`);
  }
  const started = performance.now();
  const property = fc.property(instanceArb(arbOptionsFor(profile)), (instance) => {
    const failure = evaluateConstructProperty(profile, propertyId, instance);
    if (failure !== undefined) throw new PropertyFailure(failure);
  });
  const params: fc.Parameters<[Instance]> = { seed: opts.seed, numRuns: opts.runs, endOnFailure: false };
  if (opts.path !== undefined) params.path = opts.path;
  if (opts.signal) params.plugins = [stopOnAbort(opts.signal)];
  const details = fc.check(property, params);
  const verdict: PropertyVerdict = {
    property: propertyId,
    profile: profile.name,
    holds: !details.failed,
    runs: details.numRuns,
    seed: details.seed,
    wallMs: 0,
  };
  if (details.failed) {
    if (details.counterexample) {
      const instance = details.counterexample[0];
      verdict.counterexample = JSON.parse(JSON.stringify(instance)) as unknown;
      verdict.message = evaluateConstructProperty(profile, propertyId, instance);
    }
    if (details.counterexamplePath !== null) verdict.path = details.counterexamplePath;
    if (verdict.message === undefined) {
      const e = details.errorInstance;
      verdict.message = e instanceof Error ? e.message : details.interrupted ? "interrupted" : String(e);
    }
  }
  verdict.wallMs = Math.round((performance.now() - started) * 10) / 10;
  return verdict;
}

/**
 * Every property of CONSTRUCT_PROPERTIES on one profile, in order. A counterexample path belongs
 * to one property, so `opts.path` is not used here: replay with checkConstructProperty.
 */
export async function checkAllConstructProperties(profile: VersionProfile, opts: ConstructCheckOptions): Promise<PropertyVerdict[]> {
  const out: PropertyVerdict[] = [];
  for (const p of CONSTRUCT_PROPERTIES) out.push(await checkConstructProperty(profile, p.id, { runs: opts.runs, seed: opts.seed }));
  return out;
}
