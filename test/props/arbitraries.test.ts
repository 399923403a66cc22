import fc from "fast-check";
import { describe, expect, it } from "vitest";
import hostsJson from "../../fixtures/hosts.json" with { type: "json" };
import { AdminApi } from "../../harness/gateway/admin/admin-api.ts";
import { checkModelPlugin } from "../../harness/gateway/model-engine.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { VirtualClock } from "../../harness/gateway/clock/virtual-clock.ts";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import type { Store } from "../../harness/gateway/config/store.ts";
import { parseEndpointAsUrl, parseEndpointByPattern, type EndpointParser } from "../../harness/gateway/plugins/ai-proxy-multi/endpoint.ts";
import type { Instance } from "../../harness/gateway/plugins/ai-proxy-multi/types.ts";
import { isIPv4, isIPv6, Resolver } from "../../harness/gateway/resolver/resolver.ts";
import {
  ARB_HOSTS,
  INVALID_ROUTE_KINDS,
  instanceArb,
  instancesArb,
  invalidRouteArb,
  routeArb,
  VERTEX_REGIONS,
  type AiProxyMultiRouteBody,
} from "../../harness/props/arbitraries.ts";

const SEED = 13101;
const RUNS = 300;

/** An Admin API whose plugin check is the model's at a release with that endpoint reader. */
function admin(parseEndpoint: EndpointParser, store: Store = {} as Store): AdminApi {
  const profile = parseEndpoint === parseEndpointAsUrl ? getProfile("3.18.0") : getProfile("3.16.0");
  return new AdminApi({ store, prefix: "/apisix", clock: new VirtualClock(), checkPlugin: async (name, conf) => checkModelPlugin(profile, name, conf) });
}

/** check() fills defaults into its argument: always hand it a copy. */
const check = (api: AdminApi, route: object) => api.check(structuredClone(route) as Record<string, unknown>);

const instancesOf = (route: AiProxyMultiRouteBody): Instance[] => route.plugins["ai-proxy-multi"].instances;

/** scheme, host (brackets kept), port, path, query of an endpoint as written. */
function endpointParts(endpoint: string) {
  const m = /^(https?):\/\/(\[[^\]]*\]|[^:/?]+)(?::(\d+))?(\/[^?]*)?(?:\?(.*))?$/.exec(endpoint);
  if (!m) throw new Error(`unexpected endpoint shape: ${endpoint}`);
  return { scheme: m[1]!, host: m[2]!, port: m[3], path: m[4], query: m[5] };
}

function hostKind(host: string): "ipv4" | "ipv6" | "domain" {
  return isIPv4(host) ? "ipv4" : isIPv6(host) ? "ipv6" : "domain";
}

function count(labels: Iterable<string>): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of labels) m.set(l, (m.get(l) ?? 0) + 1);
  return m;
}

describe("routeArb: schema-valid routes", () => {
  it("every route passes AdminApi.check with the URL endpoint reader (3.17+)", async () => {
    const api = admin(parseEndpointAsUrl);
    await fc.assert(
      fc.asyncProperty(routeArb(), async (route) => {
        expect(await check(api, route), JSON.stringify(route)).toBeUndefined();
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("with ipv6: false, every route passes with both the URL and the pattern reader (3.15/3.16)", async () => {
    const byUrl = admin(parseEndpointAsUrl);
    const byPattern = admin(parseEndpointByPattern);
    await fc.assert(
      fc.asyncProperty(routeArb({ ipv6: false }), async (route) => {
        expect(await check(byUrl, route), JSON.stringify(route)).toBeUndefined();
        expect(await check(byPattern, route), JSON.stringify(route)).toBeUndefined();
        expect(JSON.stringify(route)).not.toContain("[::1]");
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

  it("instancesArb keeps names unique and respects minLength/maxLength", () => {
    fc.assert(
      fc.property(instancesArb({ minLength: 2, maxLength: 5 }), (instances) => {
        expect(instances.length).toBeGreaterThanOrEqual(2);
        expect(instances.length).toBeLessThanOrEqual(5);
        expect(new Set(instances.map((i) => i.name)).size).toBe(instances.length);
      }),
      { seed: SEED + 2, numRuns: RUNS },
    );
  });

  it("queryWithoutPath: false always puts a path or a port before a query", () => {
    const endpoints = fc
      .sample(instanceArb({ ipv6: false, queryWithoutPath: false }), { seed: SEED, numRuns: RUNS })
      .flatMap((i) => (i.override?.endpoint ? [i.override.endpoint] : []));
    expect(endpoints.some((e) => endpointParts(e).query !== undefined)).toBe(true);
    for (const e of endpoints) {
      const p = endpointParts(e);
      if (p.query !== undefined) expect(p.path !== undefined || p.port !== undefined, e).toBe(true);
      expect(parseEndpointByPattern(e)?.host, e).not.toMatch(/[?[]/);
    }
  });

  it("zeroWeight: false never produces weight 0", () => {
    for (const ins of fc.sample(instanceArb({ zeroWeight: false }), { seed: SEED, numRuns: RUNS })) expect(ins.weight).toBeGreaterThan(0);
  });

  it("instances are plain JSON without runtime fields and round-trip through JSON unchanged", () => {
    fc.assert(
      fc.property(instanceArb(), (ins) => {
        expect(Object.keys(ins).filter((k) => k.startsWith("_"))).toEqual([]);
        expect(JSON.parse(JSON.stringify(ins))).toStrictEqual(ins);
      }),
      { seed: SEED + 3, numRuns: RUNS },
    );
    const [route] = fc.sample(routeArb({ minLength: 3 }), { seed: SEED, numRuns: 1 });
    expect(JSON.parse(JSON.stringify(route))).toStrictEqual(route);
  });

  it("every domain in a generated endpoint or probe host resolves through hosts.json + ARB_HOSTS", () => {
    const resolver = new Resolver({ ...(hostsJson as Record<string, string>), ...ARB_HOSTS });
    for (const route of fc.sample(routeArb(), { seed: SEED + 4, numRuns: RUNS })) {
      for (const ins of instancesOf(route)) {
        const hosts = [ins.checks?.active.host].filter((h): h is string => h !== undefined);
        if (ins.override?.endpoint) hosts.push(endpointParts(ins.override.endpoint).host);
        for (const host of hosts) {
          if (hostKind(host) !== "domain") continue;
          expect(() => resolver.resolveAll(host), host).not.toThrow();
        }
      }
    }
  });
});

describe("routeArb: coverage within 300 samples", () => {
  const instances = fc.sample(routeArb(), { seed: SEED + 5, numRuns: RUNS }).flatMap(instancesOf);
  const endpoints = instances.flatMap((i) => (i.override?.endpoint ? [i.override.endpoint] : []));

  it("reaches every provider shape", () => {
    const shapes = count(
      instances.map((i) =>
        i.provider === "vertex-ai" ? (i.provider_conf ? "vertex-ai+provider_conf" : "vertex-ai+override") : `${i.provider}${i.override ? "+override" : ""}`,
      ),
    );
    for (const s of ["openai", "openai+override", "deepseek", "deepseek+override", "openai-compatible+override", "vertex-ai+provider_conf", "vertex-ai+override"]) {
      expect(shapes.get(s) ?? 0, `${s} in ${JSON.stringify([...shapes])}`).toBeGreaterThan(0);
    }
    expect(shapes.has("openai-compatible"), "openai-compatible always has an override").toBe(false);
    const regions = new Set(instances.flatMap((i) => (i.provider_conf?.region ? [i.provider_conf.region] : [])));
    expect([...regions].sort()).toEqual([...VERTEX_REGIONS].sort());
  });

  it("reaches every endpoint shape: scheme, port or not, path or not, query or not, IPv4/IPv6/domain", () => {
    const seen = count(
      endpoints.flatMap((e) => {
        const p = endpointParts(e);
        return [
          p.scheme,
          p.port !== undefined ? "port" : "no port",
          p.path !== undefined ? "path" : "no path",
          p.query !== undefined ? "query" : "no query",
          p.path === undefined && p.query !== undefined ? "query without path" : "",
          hostKind(p.host),
          Array.isArray(ARB_HOSTS[p.host]) ? "two-address domain" : "",
        ].filter(Boolean);
      }),
    );
    for (const s of ["http", "https", "port", "no port", "path", "no path", "query", "no query", "query without path", "ipv4", "ipv6", "domain", "two-address domain"]) {
      expect(seen.get(s) ?? 0, `${s} in ${JSON.stringify([...seen])}`).toBeGreaterThan(0);
    }
  });

  it("reaches both auth kinds, alone and together", () => {
    const seen = count(instances.map((i) => [i.auth?.header ? "header" : "", i.auth?.query ? "query" : ""].filter(Boolean).join("+")));
    for (const s of ["header", "query", "header+query"]) expect(seen.get(s) ?? 0, JSON.stringify([...seen])).toBeGreaterThan(0);
    expect(seen.has(""), "auth always has header or query").toBe(false);
  });

  it("reaches each check type and http_path with and without a query", () => {
    const seen = count(
      instances.flatMap((i) => {
        const a = i.checks!.active;
        return [
          `type:${a.type}`,
          a.http_path === undefined ? "no http_path" : a.http_path.includes("?") ? "http_path with query" : "http_path",
          a.host !== undefined ? "probe host" : "",
          a.port !== undefined ? "probe port" : "",
          a.req_headers ? "req_headers" : "",
        ].filter(Boolean);
      }),
    );
    for (const s of ["type:http", "type:tcp", "type:https", "http_path", "http_path with query", "probe host", "probe port", "req_headers"]) {
      expect(seen.get(s) ?? 0, `${s} in ${JSON.stringify([...seen])}`).toBeGreaterThan(0);
    }
    expect(seen.get("type:https")!).toBeLessThan(seen.get("type:http")!);
  });
});

describe("invalidRouteArb: routes the Admin API must reject", () => {
  it("every mutation is rejected with a message, by both endpoint readers", async () => {
    const byUrl = admin(parseEndpointAsUrl);
    const byPattern = admin(parseEndpointByPattern);
    await fc.assert(
      fc.asyncProperty(invalidRouteArb(), async ({ route, broken }) => {
        for (const api of [byUrl, byPattern]) {
          const err = await check(api, route);
          expect(typeof err, `${broken}: ${JSON.stringify(route)}`).toBe("string");
          expect(err!.length, broken).toBeGreaterThan(0);
        }
      }),
      { seed: SEED + 6, numRuns: RUNS },
    );
  });

  it("reaches every kind of breakage within 300 samples", () => {
    const seen = count(fc.sample(invalidRouteArb(), { seed: SEED + 7, numRuns: RUNS }).map((x) => x.broken));
    for (const kind of INVALID_ROUTE_KINDS) expect(seen.get(kind) ?? 0, kind).toBeGreaterThan(0);
  });

  it("rejection messages name the broken part", async () => {
    const api = admin(parseEndpointAsUrl);
    const messages = new Map<string, string>();
    for (const { route, broken } of fc.sample(invalidRouteArb(), { seed: SEED + 8, numRuns: RUNS })) {
      if (!messages.has(broken)) messages.set(broken, (await check(api, route)) ?? "");
    }
    expect(messages.get("unknown provider")).toMatch(/provider/);
    expect(messages.get("empty instances")).toMatch(/instances/);
    expect(messages.get("unknown top-level route property")).toMatch(/additional properties/);
    expect(messages.get("uri as number")).toMatch(/uri/);
    expect(messages.get("checks.active.type udp")).toMatch(/type/);
    expect(messages.get("healthy.successes 255")).toMatch(/successes/);
    expect(messages.get("unhealthy.interval 0")).toMatch(/interval/);
  });
});

describe("invalid routes through the Admin API handler", () => {
  it("each kind of breakage answers 400 with an error_msg and stores nothing", async () => {
    const store = new MemoryStore();
    const api = admin(parseEndpointAsUrl, store);
    const samples = fc.sample(invalidRouteArb(), { numRuns: 150, seed: 4242 });
    const kinds = new Set<string>();
    for (const { route, broken } of samples) {
      const res = await api.handle({ method: "PUT", path: "/apisix/admin/routes/1", headers: { "X-API-KEY": "edd1c9f034335f136f87ad84b625c8f1" }, body: JSON.stringify(route) });
      expect(res.status, broken).toBe(400);
      expect((JSON.parse(res.body) as { error_msg: string }).error_msg.length, broken).toBeGreaterThan(0);
      kinds.add(broken);
    }
    expect(kinds.size).toBeGreaterThanOrEqual(15);
    expect(await store.get("/apisix/routes/1")).toBeUndefined();
  });
});
