/**
 * The small fixed world the lifecycle model runs in: two route ids, three mock backends on
 * addresses of their own, and instances drawn from `instanceArb` whose endpoints are pointed at
 * those backends (so probes and chat requests really reach them).
 */
import fc from "fast-check";
import type { BackendSpec } from "../../backends/backend.ts";
import type { Checks, Instance } from "../../gateway/plugins/ai-proxy-multi/types.ts";
import { ARB_HOSTS, activeChecksArb, instanceArb } from "../arbitraries.ts";

export const ROUTE_IDS = ["1", "2"] as const;
export type RouteId = (typeof ROUTE_IDS)[number];

/** Each backend answers on its own host name and address (clear of fixtures/hosts.json and ARB_HOSTS). */
export const LIFECYCLE_BACKENDS = [
  { name: "b0", host: "b0.lifecycle.test", ip: "127.0.0.220" },
  { name: "b1", host: "b1.lifecycle.test", ip: "127.0.0.221" },
  { name: "b2", host: "b2.lifecycle.test", ip: "127.0.0.222" },
] as const;
export type BackendName = (typeof LIFECYCLE_BACKENDS)[number]["name"];
export const BACKEND_NAMES: readonly BackendName[] = LIFECYCLE_BACKENDS.map((b) => b.name);

/** Resolver entries of the world: the backends' names plus the names instanceArb may use for probe hosts. */
export const LIFECYCLE_HOSTS: Record<string, string | string[]> = {
  ...ARB_HOSTS,
  ...Object.fromEntries(LIFECYCLE_BACKENDS.map((b) => [b.host, b.ip])),
};

export function lifecycleBackends(): BackendSpec[] {
  return LIFECYCLE_BACKENDS.map((b) => ({ name: b.name, hosts: [b.host], mode: { kind: "healthy" } }));
}

export const backendIp = (name: string): string => LIFECYCLE_BACKENDS.find((b) => b.name === name)!.ip;

/** The chat request every Request command sends. */
export const CHAT_BODY = { model: "gpt-4", messages: [{ role: "user", content: "hello" }] };
export const CHAT_TEXT = JSON.stringify(CHAT_BODY);

export const routeUri = (id: string): string => `/r${id}/*`;
export const requestPath = (id: string): string => `/r${id}/chat/completions`;

/** How an instance's endpoint names its backend: by domain (with or without port/path) or by address. */
const ENDPOINT_STYLES = ["domain", "domain-port-path", "ip-port-path"] as const;
type EndpointStyle = (typeof ENDPOINT_STYLES)[number];

export function endpointFor(backend: BackendName, style: EndpointStyle, https: boolean): string {
  const b = LIFECYCLE_BACKENDS.find((x) => x.name === backend)!;
  const scheme = https ? "https" : "http";
  if (style === "domain") return `${scheme}://${b.host}`;
  if (style === "domain-port-path") return `${scheme}://${b.host}:${https ? 8443 : 8080}/v1/chat/completions`;
  return `${scheme}://${b.ip}:${https ? 443 : 80}/v1`;
}

/**
 * An instance template: everything but its name (unique names are handed out when a command
 * runs). From instanceArb (IPv4 only, every query after a path: endpoints both readers accept),
 * then pointed at one of the backends.
 */
export interface InstanceSpec {
  backend: BackendName;
  /** The instance as it will be sent, name left empty. */
  body: Instance;
}

export const instanceSpecArb: fc.Arbitrary<InstanceSpec> = fc
  .tuple(
    instanceArb({ ipv6: false, queryWithoutPath: false }),
    fc.constantFrom(...BACKEND_NAMES),
    fc.constantFrom(...ENDPOINT_STYLES),
    fc.boolean(),
  )
  .map(([ins, backend, style, https]) => {
    // Same fields, in a readable order, endpoint replaced (provider_conf would clash with it).
    const { name: _name, provider, weight, provider_conf: _conf, override: _override, checks, ...rest } = ins;
    const body: Instance = { name: "", provider, weight, ...rest, override: { endpoint: endpointFor(backend, style, https) } };
    if (checks) body.checks = checks;
    return { backend, body };
  });

/** A new `checks` for ChangeChecks. */
export const checksArb: fc.Arbitrary<Checks> = activeChecksArb({ ipv6: false }).map((active) => ({ active }));

/**
 * Where commands get instances and checks from. Drawing from instanceArb for every command is
 * the slowest part of a run (~60 us per instance, about half the time of a sequence), so by
 * default each checkLifecycle call draws a pool once (from its seed: same seed, same pool) and
 * commands pick from it by index. The pool is sorted by size, so shrinking an index moves toward
 * the simplest instances. `size` 0: no pool, every command draws afresh (contents shrink too).
 */
export interface WorldSource {
  instance: fc.Arbitrary<InstanceSpec>;
  checks: fc.Arbitrary<Checks>;
}

function pooled<T>(arb: fc.Arbitrary<T>, seed: number, size: number): fc.Arbitrary<T> {
  const pool = fc
    .sample(arb, { seed, numRuns: size })
    .map((v) => ({ v, n: JSON.stringify(v).length }))
    .sort((a, b) => a.n - b.n)
    .map((x) => x.v);
  return fc.nat({ max: pool.length - 1 }).map((i) => pool[i]!);
}

export function worldSource(seed: number, size = 256): WorldSource {
  if (size <= 0) return { instance: instanceSpecArb, checks: checksArb };
  return { instance: pooled(instanceSpecArb, seed, size), checks: pooled(checksArb, seed + 1, Math.max(1, size >> 2)) };
}

/** The route body as PUT sends it. */
export function routeBody(id: string, instances: Instance[], desc?: string): Record<string, unknown> {
  const body: Record<string, unknown> = { uri: routeUri(id), plugins: { "ai-proxy-multi": { instances } } };
  if (desc !== undefined) body.desc = desc;
  return body;
}

/**
 * JSON text of instances the commands made, by object: a route is PUT again and again with the
 * same instance objects (add, remove, new checks), and stringifying every body whole was 4% of a
 * run. Nothing modifies an instance once made (changes make new objects).
 */
const instanceTexts = new WeakMap<Instance, string>();
const specTexts = new WeakMap<Instance, string>();
const UNNAMED_HEAD = '{"name":""';

/** A spec's instance under a name: `{...spec.body, name}` (name stays the first key), its text derived from the spec's. */
export function namedInstance(spec: InstanceSpec, name: string): Instance {
  let text = specTexts.get(spec.body);
  if (text === undefined) specTexts.set(spec.body, (text = JSON.stringify(spec.body)));
  const ins: Instance = { ...spec.body, name };
  instanceTexts.set(ins, text.startsWith(UNNAMED_HEAD) ? `{"name":${JSON.stringify(name)}${text.slice(UNNAMED_HEAD.length)}` : JSON.stringify(ins));
  return ins;
}

function instanceText(ins: Instance): string {
  let text = instanceTexts.get(ins);
  if (text === undefined) instanceTexts.set(ins, (text = JSON.stringify(ins)));
  return text;
}

/** JSON.stringify(routeBody(id, instances, desc)), from the instances' remembered texts. */
export function routeText(id: string, instances: Instance[], desc?: string): string {
  const tail = desc === undefined ? "" : `,"desc":${JSON.stringify(desc)}`;
  return `{"uri":${JSON.stringify(routeUri(id))},"plugins":{"ai-proxy-multi":{"instances":[${instances.map(instanceText).join(",")}]}}${tail}}`;
}
