import type { LogWriter } from "../../healthcheck/library.ts";
import type { LuaRandom } from "../../healthcheck/lua-random.ts";
import type { LogSource } from "../../log/error-log.ts";
import { isIPv4, isIPv6, ResolveError, type Resolver } from "../../resolver/resolver.ts";
import { endpointNode, resolveDomain, sameNodes, sortNodes, type EndpointParser } from "./endpoint.ts";
import type { DnsNode, Instance } from "./types.ts";

export interface PluginEnv {
  resolver: Resolver;
  log: LogWriter;
  /**
   * The worker's math.random: which DNS answer a request uses. Without one the first answer is
   * used (the construct_upstream properties compare against a request path without chance).
   */
  random?: LuaRandom;
}

/** Where a failed DNS lookup is logged: resolver.lua first, then ai-proxy-multi.lua. */
export interface DnsLogSites {
  resolver: LogSource;
  plugin: LogSource;
}

/**
 * How a release records an instance's resolved endpoint on the in-memory config object, the
 * runtime-only fields that a config refresh drops.
 */
export interface RuntimeFields {
  /**
   * The request path's resolve_endpoint: resolve and record, bumping `_nodes_ver` on a change.
   * `context`: the log suffix of the caller (a request's, or `ngx.timer`).
   */
  resolve(instance: Instance, env: PluginEnv, context?: string): void;
  /** The nodes recorded on the instance, if any. */
  nodes(instance: Instance): DnsNode[] | undefined;
  /** pick_target copies the fields onto the object fetch_latest_conf returns. */
  copy(from: Instance, to: Instance): void;
  /** What `resolve` would record (first answer), computed without touching the instance or logging. */
  compute(instance: Instance, env: PluginEnv): DnsNode[];
  /**
   * After the pick (3.17+): the node this request goes to, at random among the instance's healthy
   * nodes (or all), recorded in `_dns_value`.
   */
  useNodeForRequest?(instance: Instance, env: PluginEnv): void;
}

/** What the harness's DNS answers for a name it does not know, as lua-resty-dns-client reports NXDOMAIN through APISIX's dns client. */
const NXDOMAIN = "failed to query the DNS server: dns server error: 3 name error";

/** The addresses of a node's host: [] for an IP literal, or the error. */
function lookup(host: string, resolver: Resolver): { ips: string[] } | { error: string } {
  if (isIPv4(host) || isIPv6(host)) return { ips: [] };
  try {
    return { ips: resolver.resolveAll(host) };
  } catch (e) {
    if (!(e instanceof ResolveError)) throw e;
    return { error: NXDOMAIN };
  }
}

function logDnsError(env: PluginEnv, sites: DnsLogSites, host: string, error: string, context: string): void {
  env.log.write("error", sites.resolver, `failed to parse domain: ${host}, error: ${error}`, context);
  env.log.write("error", sites.plugin, `dns resolver domain: ${host} error: ${error}`, context);
}

const pick = <T>(list: T[], env: PluginEnv): T => list[env.random ? env.random.int(1, list.length) - 1 : 0]!;

/**
 * 3.15/3.16: one node in `_dns_value`: parse_domain asks the DNS client for one answer, at random
 * among the addresses (apisix/core/dns/client.lua), so a name with several addresses may change
 * host from one request to the next, and each change bumps `_nodes_ver`.
 */
export function singleNodeFields(parse: EndpointParser, sites: DnsLogSites): RuntimeFields {
  return {
    compute: (instance, env) => [resolveDomain(endpointNode(instance, parse), env.resolver).nodes[0]!],
    resolve(instance, env, context = "ngx.timer") {
      const base = endpointNode(instance, parse);
      const found = lookup(base.host, env.resolver);
      let node: DnsNode = base;
      if ("error" in found) {
        node = { ...base, domain: base.host };
        logDnsError(env, sites, base.host, found.error, context);
      } else if (found.ips.length > 0) node = { ...base, host: pick(found.ips, env), domain: base.host };
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

/**
 * 3.17+: every address, sorted, in `_dns_nodes`; the node of the request in `_dns_value`, at random
 * among them (pick_request_node), again after the pick among the healthy ones.
 */
export function multiNodeFields(parse: EndpointParser, sites: DnsLogSites): RuntimeFields {
  const useNode = (instance: Instance, nodes: DnsNode[] | undefined, env: PluginEnv) => {
    if (nodes && nodes.length > 0) instance._dns_value = pick(nodes, env);
  };
  return {
    compute: (instance, env) => sortNodes(resolveDomain(endpointNode(instance, parse), env.resolver).nodes),
    resolve(instance, env, context = "ngx.timer") {
      const base = endpointNode(instance, parse);
      const found = lookup(base.host, env.resolver);
      let nodes: DnsNode[] = [base];
      if ("error" in found) logDnsError(env, sites, base.host, found.error, context);
      else if (found.ips.length > 0) nodes = sortNodes(found.ips.map((ip) => ({ ...base, host: ip, domain: base.host })));
      if (!sameNodes(instance._dns_nodes, nodes)) {
        instance._dns_nodes = nodes;
        instance._nodes_ver = (instance._nodes_ver ?? 0) + 1;
      }
      useNode(instance, instance._dns_nodes, env);
    },
    nodes: (instance) => instance._dns_nodes,
    copy(from, to) {
      if (from._dns_nodes) to._dns_nodes = from._dns_nodes;
      if (from._nodes_ver !== undefined) to._nodes_ver = from._nodes_ver;
    },
    useNodeForRequest: (instance, env) => useNode(instance, instance._healthy_dns_nodes ?? instance._dns_nodes, env),
  };
}
