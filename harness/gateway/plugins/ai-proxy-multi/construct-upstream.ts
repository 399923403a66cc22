import { LuaError } from "../../lua/lua-error.ts";
import type { PluginEnv, RuntimeFields } from "./runtime-fields.ts";
import type { Checks, DnsNode, Instance, Upstream } from "./types.ts";

/** `error` is missing when construct_upstream returned a bare nil (an injected fault can). */
export type ConstructResult = { ok: true; upstream: Upstream } | { ok: false; error?: string };

/**
 * construct_upstream(instance): the upstream the health-check manager builds a checker from.
 * It may also throw a LuaError, where the real code would raise.
 */
export type ConstructUpstream = (instance: Instance | undefined, env: PluginEnv) => ConstructResult;

/** How the probe's `checks` are derived from the instance (3.17+ add the instance's auth). */
export type ProbeChecks = (instance: Instance) => Checks | undefined;

export const checksAsConfigured: ProbeChecks = (instance) => instance.checks;

/**
 * A copy of checks with auth headers added to req_headers and auth query appended to http_path.
 * The copy is remembered per config object (a config change makes new objects), so the timers do
 * not clone the same checks every tick. Nothing writes to checks (config or copy), so only what
 * changes is copied: `checks`, `active` and `req_headers`.
 */
export function checksWithAuth(querySeparator: (path: string) => "?" | "&"): ProbeChecks {
  const derived = new WeakMap<Checks, { auth: Instance["auth"]; checks: Checks }>();
  return (instance) => {
    const checks = instance.checks;
    if (!checks?.active) return checks;
    const cached = derived.get(checks);
    if (cached && cached.auth === instance.auth) return cached.checks;
    const copy: Checks = { ...checks, active: { ...checks.active } };
    const auth = instance.auth ?? {};
    if (auth.header) {
      const headers = copy.active.req_headers ? [...copy.active.req_headers] : [];
      for (const [k, v] of Object.entries(auth.header)) {
        const line = `${k}: ${v}`;
        if (!headers.includes(line)) headers.push(line);
      }
      copy.active.req_headers = headers;
    }
    if (auth.query) {
      const path = copy.active.http_path ?? "/";
      copy.active.http_path = path + querySeparator(path) + new URLSearchParams(auth.query).toString();
    }
    derived.set(checks, { auth: instance.auth, checks: copy });
    return copy;
  };
}

function upstreamFrom(instance: Instance, nodes: DnsNode[], probeChecks: ProbeChecks): Upstream {
  const upstream: Upstream = {
    nodes: nodes.map((n) => {
      const node: Upstream["nodes"][number] = { host: n.host, port: n.port, weight: 1, priority: 0, scheme: n.scheme, name: instance.name };
      if (n.domain !== undefined) node.domain = n.domain;
      return node;
    }),
  };
  const checks = probeChecks(instance);
  if (checks !== undefined) upstream.checks = checks;
  if (instance._nodes_ver !== undefined) upstream._nodes_ver = instance._nodes_ver;
  return upstream;
}

/** 3.15/3.16: only works when the request path already set `_dns_value`; a nil instance raises. */
export function constructFromRuntimeOnly(fields: RuntimeFields, probeChecks: ProbeChecks, nilInstanceLine: number): ConstructUpstream {
  return (instance) => {
    if (!instance) throw new LuaError("plugins/ai-proxy-multi.lua", nilInstanceLine, "attempt to index local 'instance' (a nil value)");
    const nodes = fields.nodes(instance);
    if (!nodes) return { ok: false, error: `failed to resolve endpoint for instance: ${instance.name}` };
    return { ok: true, upstream: upstreamFrom(instance, nodes, probeChecks) };
  };
}

/** 3.17/3.18: resolves the endpoint itself when the fields are missing, writing them onto the instance. */
export function constructResolvingInPlace(fields: RuntimeFields, probeChecks: ProbeChecks): ConstructUpstream {
  return (instance, env) => {
    if (!instance) return { ok: false, error: "instance configuration is nil" };
    if (!fields.nodes(instance)) fields.resolve(instance, env);
    const nodes = fields.nodes(instance);
    if (!nodes) return { ok: false, error: `failed to resolve endpoint for instance: ${instance.name}` };
    return { ok: true, upstream: upstreamFrom(instance, nodes, probeChecks) };
  };
}

/**
 * Fix candidates: use the runtime fields when present, else compute the node from static config
 * with a pure function that leaves the instance untouched. `compute` decides how the node is found.
 */
export function constructWithPureFallback(
  fields: RuntimeFields,
  probeChecks: ProbeChecks,
  compute: (instance: Instance, env: PluginEnv) => DnsNode[],
): ConstructUpstream {
  return (instance, env) => {
    if (!instance) return { ok: false, error: "instance configuration is nil" };
    let nodes = fields.nodes(instance);
    if (!nodes) {
      try {
        nodes = compute(instance, env);
      } catch (e) {
        return { ok: false, error: `failed to resolve endpoint for instance: ${instance.name}: ${(e as Error).message}` };
      }
    }
    return { ok: true, upstream: upstreamFrom(instance, nodes, probeChecks) };
  };
}
