import type { ErrorLog } from "../../log/error-log.ts";
import type { Resolver } from "../../resolver/resolver.ts";
import { endpointNode, resolveDomain, sameNodes, sortNodes, type EndpointParser } from "./endpoint.ts";
import type { DnsNode, Instance } from "./types.ts";

export interface PluginEnv {
  resolver: Resolver;
  log: ErrorLog;
}

/**
 * How a release records an instance's resolved endpoint on the in-memory config object, the
 * runtime-only fields that a config refresh drops.
 */
export interface RuntimeFields {
  /** The request path's resolve_endpoint: resolve and record, bumping `_nodes_ver` on a change. */
  resolve(instance: Instance, env: PluginEnv): void;
  /** The nodes recorded on the instance, if any. */
  nodes(instance: Instance): DnsNode[] | undefined;
  /** pick_target copies the fields onto the object fetch_latest_conf returns. */
  copy(from: Instance, to: Instance): void;
  /** What `resolve` would record, computed without touching the instance. */
  compute(instance: Instance, env: PluginEnv): DnsNode[];
}

function logDnsError(env: PluginEnv, host: string, error: string): void {
  env.log.write("error", { file: "plugins/ai-proxy-multi.lua", line: 174, fn: "parse_domain_for_node" }, `dns resolver domain: ${host} error: ${error}`, "ngx.timer");
}

/** 3.15/3.16: one node (the first address) in `_dns_value`; a changed host bumps `_nodes_ver`. */
export function singleNodeFields(parse: EndpointParser): RuntimeFields {
  const compute = (instance: Instance, env: PluginEnv): DnsNode[] => {
    const base = endpointNode(instance, parse);
    const out = resolveDomain(base, env.resolver);
    if (out.error) logDnsError(env, base.host, out.error);
    return [out.nodes[0]!];
  };
  return {
    compute,
    resolve(instance, env) {
      const node = compute(instance, env)[0]!;
      const old = instance._dns_value;
      if (!old || old.host !== node.host) {
        instance._dns_value = node;
        instance._nodes_ver = (instance._nodes_ver ?? 0) + 1;
      }
    },
    nodes: (instance) => (instance._dns_value ? [instance._dns_value] : undefined),
    copy(from, to) {
      if (from._dns_value) to._dns_value = from._dns_value;
      if (from._nodes_ver !== undefined) to._nodes_ver = from._nodes_ver;
    },
  };
}

/** 3.17+: every address, sorted, in `_dns_nodes`; the request's own node in `_dns_value`. */
export function multiNodeFields(parse: EndpointParser): RuntimeFields {
  const compute = (instance: Instance, env: PluginEnv): DnsNode[] => {
    const base = endpointNode(instance, parse);
    const out = resolveDomain(base, env.resolver);
    if (out.error) logDnsError(env, base.host, out.error);
    return sortNodes(out.nodes);
  };
  return {
    compute,
    resolve(instance, env) {
      const nodes = compute(instance, env);
      if (!sameNodes(instance._dns_nodes, nodes)) {
        instance._dns_nodes = nodes;
        instance._nodes_ver = (instance._nodes_ver ?? 0) + 1;
      }
      instance._dns_value = instance._dns_nodes![0]!;
    },
    nodes: (instance) => instance._dns_nodes,
    copy(from, to) {
      if (from._dns_nodes) to._dns_nodes = from._dns_nodes;
      if (from._nodes_ver !== undefined) to._nodes_ver = from._nodes_ver;
    },
  };
}
