/**
 * fast-check arbitraries for ai-proxy-multi configs: schema-valid instances and routes (plain
 * JSON, as they sit in etcd, no runtime fields), and routes broken by exactly one mutation that
 * the Admin API must reject.
 *
 * Every domain name in a generated endpoint is either in fixtures/hosts.json or in ARB_HOSTS;
 * callers add ARB_HOSTS to their resolver (`new Resolver({...defaultHosts(), ...ARB_HOSTS})`).
 */
import fc from "fast-check";
import defaultHostsJson from "../../fixtures/hosts.json" with { type: "json" };
import type { ActiveChecks, Instance } from "../gateway/plugins/ai-proxy-multi/types.ts";
import { PROVIDER_NAMES } from "../gateway/providers/providers.ts";

/**
 * Extra names the generators use, each mapped to 127.0.0.x (some to two addresses). The
 * addresses sit high in 127.0.0.0/24 so they stay clear of fixtures/hosts.json (.2-.7) and of
 * Resolver.allocate, which counts up from .2.
 */
export const ARB_HOSTS: Record<string, string | string[]> = {
  "llm.arb.test": "127.0.0.201",
  "gateway.arb.test": ["127.0.0.202", "127.0.0.203"],
  "models.arb.internal": "127.0.0.204",
  "inference.arb.internal": ["127.0.0.205", "127.0.0.206"],
  "vertex-proxy.arb.test": "127.0.0.207",
  "ollama.arb.test": "127.0.0.208",
};

const FIXTURE_HOSTS = Object.keys(defaultHostsJson as Record<string, string>);

/** Every domain name the generators may put in an endpoint or a probe host. */
export const ARB_DOMAINS: readonly string[] = [...new Set([...Object.keys(ARB_HOSTS), ...FIXTURE_HOSTS])];

/** Vertex AI regions that have a regional host in fixtures/hosts.json. */
export const VERTEX_REGIONS = ["us-central1", "europe-west4", "asia-east1"] as const;

export interface ArbOptions {
  /** Generate `[::1]` endpoints and probe hosts (default true). 3.15/3.16 read IPv6 endpoints wrongly. */
  ipv6?: boolean;
  /** Allow `weight: 0` (schema-valid; such an instance is never picked). Default true. */
  zeroWeight?: boolean;
  /**
   * Allow endpoints with a query but neither port nor path (`http://h?x=1`). Default true. The
   * 3.15/3.16 pattern reads their host as `h?x=1`, which does not resolve.
   */
  queryWithoutPath?: boolean;
}

export interface InstancesArbOptions extends ArbOptions {
  minLength?: number;
  maxLength?: number;
}

export type AiProxyMultiRouteBody = {
  uri: string;
  plugins: { "ai-proxy-multi": { instances: Instance[] } };
};

/** fc.record may build null-prototype objects, which do not deep-equal their JSON round trip. */
const PLAIN = { noNullPrototype: true } as const;

const opt = <T>(arb: fc.Arbitrary<T>, freq = 2): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined, freq });
/** Present in about one value out of `outOf`. */
const rare = <T>(arb: fc.Arbitrary<T>, outOf = 4): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: arb, weight: 1 }, { arbitrary: fc.constant(undefined), weight: outOf - 1 });

const chars = (set: string, minLength: number, maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...set.split("")), minLength, maxLength });

const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const tokenArb = chars(`${ALNUM}-_`, 1, 32);

// ---------------------------------------------------------------- endpoints

/** The host of an endpoint: IPv4 loopback literal, `[::1]`, or a resolvable domain name. */
export function endpointHostArb(opts: ArbOptions = {}): fc.Arbitrary<string> {
  const ipv4 = fc.oneof(fc.constant("127.0.0.1"), fc.integer({ min: 1, max: 254 }).map((x) => `127.0.0.${x}`));
  const domain = fc.constantFrom(...ARB_DOMAINS);
  return opts.ipv6 === false
    ? fc.oneof({ arbitrary: ipv4, weight: 2 }, { arbitrary: domain, weight: 3 })
    : fc.oneof({ arbitrary: ipv4, weight: 2 }, { arbitrary: domain, weight: 3 }, { arbitrary: fc.constant("[::1]"), weight: 1 });
}

const portArb = fc.oneof(fc.constantFrom(80, 443, 8080, 8443, 11434, 9000), fc.integer({ min: 1, max: 65535 }));

const pathArb = fc.oneof(
  fc.constantFrom("/", "/v1", "/v1/chat/completions", "/openai/v1", "/api/v3/chat/completions", "/v1/projects/p/locations/us-central1/endpoints/openapi"),
  // No "." in segments: URL parsing would fold "." and ".." segments away.
  fc.array(chars("abcdefghijklmnopqrstuvwxyz0123456789-_", 1, 8), { minLength: 1, maxLength: 4 }).map((segs) => `/${segs.join("/")}`),
);

const queryArb = fc.oneof(
  fc.constantFrom("api-version=2024-06-01", "key=abc", "a=1&b=2", "alt=sse", "x"),
  fc.array(fc.tuple(chars("abcdefghijklmnopqrstuvwxyz_", 1, 8), tokenArb), { minLength: 1, maxLength: 3 }).map((kv) => kv.map(([k, v]) => `${k}=${v}`).join("&")),
);

/** `http(s)://host[:port][/path][?query]`: every combination of port, path and query present or not. */
export function endpointArb(opts: ArbOptions = {}): fc.Arbitrary<string> {
  return fc
    .record({
      scheme: fc.constantFrom("http", "https"),
      host: endpointHostArb(opts),
      port: opt(portArb, 2),
      path: opt(pathArb, 2),
      query: rare(queryArb, 3),
    }, PLAIN)
    .map(({ scheme, host, port, path, query }) => {
      if (opts.queryWithoutPath === false && query !== undefined && port === undefined && path === undefined) path = "/";
      return `${scheme}://${host}${port !== undefined ? `:${port}` : ""}${path ?? ""}${query !== undefined ? `?${query}` : ""}`;
    });
}

// ---------------------------------------------------------------- instance parts

const HEADER_KEYS = ["Authorization", "api-key", "X-Api-Key", "x-goog-api-key"] as const;
const QUERY_KEYS = ["key", "api_key", "api-version", "token"] as const;

function mapArb(keys: readonly string[], value: (key: string) => fc.Arbitrary<string>): fc.Arbitrary<Record<string, string>> {
  return fc
    .uniqueArray(fc.constantFrom(...keys), { minLength: 1, maxLength: 2 })
    .chain((ks) => fc.tuple(...ks.map((k) => value(k).map((v) => [k, v] as const))))
    .map((pairs) => Object.fromEntries(pairs));
}

const headerMapArb = mapArb(HEADER_KEYS, (k) => (k === "Authorization" ? tokenArb.map((t) => `Bearer ${t}`) : tokenArb));
const queryMapArb = mapArb(QUERY_KEYS, () => tokenArb);

/** `auth` with `header`, `query`, or both. */
export const authArb: fc.Arbitrary<NonNullable<Instance["auth"]>> = fc.oneof(
  headerMapArb.map((header) => ({ header })),
  queryMapArb.map((query) => ({ query })),
  fc.tuple(headerMapArb, queryMapArb).map(([header, query]) => ({ header, query })),
);

const statusesArb = (pool: number[]) =>
  fc.oneof(fc.uniqueArray(fc.constantFrom(...pool), { minLength: 1, maxLength: 4 }), fc.uniqueArray(fc.integer({ min: 200, max: 599 }), { minLength: 1, maxLength: 3 }));

const HTTP_PATHS = ["/", "/health", "/healthz", "/v1/models", "/status"];
const httpPathArb = fc.oneof(
  fc.constantFrom(...HTTP_PATHS),
  fc.tuple(fc.constantFrom(...HTTP_PATHS), queryArb).map(([p, q]) => `${p}?${q}`),
);

const REQ_HEADERS = ["User-Agent: apisix-harness", "X-Probe: 1", "Accept: application/json", "X-Health-Check: true"];

/** `checks.active` with every counter in its range; type http or tcp, https rarely. */
export function activeChecksArb(opts: ArbOptions = {}): fc.Arbitrary<ActiveChecks> {
  const probeHost = opts.ipv6 === false ? fc.oneof(fc.constantFrom(...ARB_DOMAINS), fc.constant("127.0.0.1")) : fc.oneof(fc.constantFrom(...ARB_DOMAINS), fc.constantFrom("127.0.0.1", "[::1]"));
  return fc
    .record({
      type: fc.oneof({ arbitrary: fc.constant("http" as const), weight: 5 }, { arbitrary: fc.constant("tcp" as const), weight: 4 }, { arbitrary: fc.constant("https" as const), weight: 1 }),
      timeout: opt(fc.constantFrom(0.5, 1, 1.5, 2, 3)),
      http_path: opt(httpPathArb, 6),
      host: rare(probeHost),
      port: rare(fc.integer({ min: 1, max: 65535 })),
      healthy: fc.record({ interval: fc.integer({ min: 1, max: 3 }), successes: fc.integer({ min: 1, max: 5 }), http_statuses: opt(statusesArb([200, 201, 204, 302])) }, PLAIN),
      unhealthy: fc.record({
        interval: fc.integer({ min: 1, max: 3 }),
        http_failures: fc.integer({ min: 1, max: 5 }),
        tcp_failures: fc.integer({ min: 1, max: 5 }),
        timeouts: fc.integer({ min: 1, max: 5 }),
        http_statuses: opt(statusesArb([404, 429, 500, 502, 503, 504])),
      }, PLAIN),
      req_headers: opt(fc.uniqueArray(fc.constantFrom(...REQ_HEADERS), { minLength: 1, maxLength: 3 }), 2),
    }, PLAIN)
    .map((r) => compact({ ...r, healthy: compact(r.healthy), unhealthy: compact(r.unhealthy) }) as ActiveChecks);
}

/** Drop keys whose value is undefined, so values are plain JSON. */
function compact<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

const NAME_CHARS = `${ALNUM}-_.`;
const nameArb = fc.oneof(
  { arbitrary: fc.tuple(fc.constantFrom("openai", "deepseek", "compat", "vertex", "backend", "llm"), chars("abcdefghijklmnopqrstuvwxyz0123456789", 1, 6)).map(([a, b]) => `${a}-${b}`), weight: 3 },
  { arbitrary: chars(NAME_CHARS, 1, 100), weight: 1 },
);

type ProviderShape = Pick<Instance, "provider" | "override" | "provider_conf">;

/** The provider and whatever it needs: override.endpoint and/or provider_conf. */
export function providerShapeArb(opts: ArbOptions = {}): fc.Arbitrary<ProviderShape> {
  const ep = endpointArb(opts);
  const plain = (provider: string) =>
    fc.oneof({ arbitrary: fc.constant<ProviderShape>({ provider }), weight: 2 }, { arbitrary: ep.map((endpoint): ProviderShape => ({ provider, override: { endpoint } })), weight: 1 });
  return fc.oneof(
    plain("openai"),
    plain("deepseek"),
    ep.map((endpoint): ProviderShape => ({ provider: "openai-compatible", override: { endpoint } })),
    fc
      .record({ project_id: chars("abcdefghijklmnopqrstuvwxyz0123456789-", 1, 20), region: fc.constantFrom(...VERTEX_REGIONS) }, PLAIN)
      .map((provider_conf): ProviderShape => ({ provider: "vertex-ai", provider_conf })),
    ep.map((endpoint): ProviderShape => ({ provider: "vertex-ai", override: { endpoint } })),
  );
}

const MODELS = ["gpt-4o-mini", "deepseek-chat", "gemini-2.0-flash", "qwen-turbo"];

/** One schema-valid ai-proxy-multi instance with `checks.active`, plain JSON. */
export function instanceArb(opts: ArbOptions = {}): fc.Arbitrary<Instance> {
  const weight = opts.zeroWeight === false ? fc.integer({ min: 1, max: 10 }) : fc.oneof({ arbitrary: fc.integer({ min: 1, max: 10 }), weight: 9 }, { arbitrary: fc.constant(0), weight: 1 });
  return fc
    .record({
      name: nameArb,
      shape: providerShapeArb(opts),
      weight,
      priority: opt(fc.integer({ min: 0, max: 2 }), 3),
      auth: authArb,
      options: opt(fc.constantFrom(...MODELS).map((model) => ({ model })), 3),
      active: activeChecksArb(opts),
    }, PLAIN)
    .map(({ name, shape, weight, priority, auth, options, active }) => {
      const ins: Instance = { name, provider: shape.provider, weight };
      if (priority !== undefined) ins.priority = priority;
      ins.auth = auth;
      if (options !== undefined) ins.options = options;
      if (shape.override) ins.override = shape.override;
      if (shape.provider_conf) ins.provider_conf = shape.provider_conf;
      ins.checks = { active };
      return ins;
    });
}

/** Instances with names unique within the array (1..4 by default). */
export function instancesArb(opts: InstancesArbOptions = {}): fc.Arbitrary<Instance[]> {
  const { minLength = 1, maxLength = Math.max(4, minLength), ...rest } = opts;
  return fc.uniqueArray(instanceArb(rest), { minLength, maxLength, selector: (i) => i.name });
}

/** A whole route body: `{uri: "/ai/*", plugins: {"ai-proxy-multi": {instances}}}`. */
export function routeArb(opts: InstancesArbOptions = {}): fc.Arbitrary<AiProxyMultiRouteBody> {
  return instancesArb(opts).map((instances) => ({ uri: "/ai/*", plugins: { "ai-proxy-multi": { instances } } }));
}

// ---------------------------------------------------------------- invalid routes

export const INVALID_ROUTE_KINDS = [
  "missing instance name",
  "missing provider",
  "missing auth",
  "missing weight",
  "negative weight",
  "unknown provider",
  "empty instances",
  "vertex-ai with neither provider_conf nor override",
  "vertex-ai with both provider_conf and override",
  "openai-compatible without override",
  "checks without active",
  "healthy.successes 0",
  "healthy.successes 255",
  "unhealthy.interval 0",
  "checks.active.type udp",
  "endpoint not starting with http(s)://",
  "unknown top-level route property",
  "weight as string",
  "uri as number",
] as const;

export type InvalidRouteKind = (typeof INVALID_ROUTE_KINDS)[number];

export interface InvalidRoute {
  route: Record<string, unknown>;
  broken: InvalidRouteKind;
}

type Route = AiProxyMultiRouteBody & Record<string, unknown>;
type Mutation = (route: Route, ins: Instance) => void;

const UNKNOWN_PROVIDERS = ["anthropic", "OpenAI", "openai ", "gemini", "", "no-such-provider"].filter((p) => !PROVIDER_NAMES.includes(p));
const UNKNOWN_ROUTE_PROPS = ["endpoint", "instances", "plugin", "upstreams", "Uri", "checks", "x_custom"];

const badEndpointArb = (opts: ArbOptions) =>
  fc.oneof(
    fc.constantFrom("ftp://127.0.0.1/v1", "127.0.0.1:8080", "//api.openai.com/v1", "HTTP://api.openai.com", "tcp://[::1]:9000", " http://127.0.0.1", "httpx://a", "http:/127.0.0.1", ""),
    endpointArb(opts).map((e) => e.replace(/^https?:\/\//, "")),
    endpointArb(opts).map((e) => `ws${e.slice(e.indexOf("://"))}`),
  );

function mutationArb(opts: ArbOptions): fc.Arbitrary<[InvalidRouteKind, Mutation]> {
  const m = (kind: InvalidRouteKind, f: Mutation) => fc.constant<[InvalidRouteKind, Mutation]>([kind, f]);
  const p = <P>(kind: InvalidRouteKind, param: fc.Arbitrary<P>, f: (route: Route, ins: Instance, p: P) => void) =>
    param.map((v): [InvalidRouteKind, Mutation] => [kind, (r, i) => f(r, i, v)]);
  const checks = (i: Instance) => i.checks!.active;
  return fc.oneof(
    m("missing instance name", (_, i) => void delete (i as Partial<Instance>).name),
    m("missing provider", (_, i) => void delete (i as Partial<Instance>).provider),
    m("missing auth", (_, i) => void delete i.auth),
    m("missing weight", (_, i) => void delete (i as Partial<Instance>).weight),
    p("negative weight", fc.integer({ min: -1000, max: -1 }), (_, i, w) => void (i.weight = w)),
    p("unknown provider", fc.constantFrom(...UNKNOWN_PROVIDERS), (_, i, name) => void (i.provider = name)),
    m("empty instances", (r) => void (r.plugins["ai-proxy-multi"].instances = [])),
    m("vertex-ai with neither provider_conf nor override", (_, i) => {
      i.provider = "vertex-ai";
      delete i.provider_conf;
      delete i.override;
    }),
    p("vertex-ai with both provider_conf and override", fc.tuple(fc.constantFrom(...VERTEX_REGIONS), endpointArb(opts)), (_, i, [region, endpoint]) => {
      i.provider = "vertex-ai";
      i.provider_conf = { project_id: "p", region };
      i.override = { endpoint };
    }),
    m("openai-compatible without override", (_, i) => {
      i.provider = "openai-compatible";
      delete i.override;
      delete i.provider_conf;
    }),
    p("checks without active", fc.constantFrom<Record<string, unknown>>({}, { passive: { type: "http" } }), (_, i, c) => void (i.checks = c as Instance["checks"])),
    m("healthy.successes 0", (_, i) => void (checks(i).healthy!.successes = 0)),
    m("healthy.successes 255", (_, i) => void (checks(i).healthy!.successes = 255)),
    m("unhealthy.interval 0", (_, i) => void (checks(i).unhealthy!.interval = 0)),
    m("checks.active.type udp", (_, i) => void (checks(i).type = "udp" as ActiveChecks["type"])),
    p("endpoint not starting with http(s)://", badEndpointArb(opts), (_, i, endpoint) => {
      i.override = { endpoint };
      if (i.provider === "vertex-ai") delete i.provider_conf;
    }),
    p("unknown top-level route property", fc.tuple(fc.constantFrom(...UNKNOWN_ROUTE_PROPS), fc.oneof(fc.constant("x"), fc.constant(1), fc.constant({}))), (r, _, [k, v]) => void (r[k] = v)),
    m("weight as string", (_, i) => void (i.weight = String(i.weight) as unknown as number)),
    p("uri as number", fc.integer({ min: 0, max: 1000 }), (r, _, n) => void (r.uri = n as unknown as string)),
  );
}

/** A valid route broken by exactly one mutation, labelled with what was broken. */
export function invalidRouteArb(opts: InstancesArbOptions = {}): fc.Arbitrary<InvalidRoute> {
  return fc.tuple(routeArb(opts), fc.nat(), mutationArb(opts)).map(([valid, n, [broken, mutate]]) => {
    const route = structuredClone(valid) as Route;
    const instances = route.plugins["ai-proxy-multi"].instances;
    mutate(route, instances[n % instances.length]!);
    return { route, broken };
  });
}
