import { getProvider } from "../../providers/providers.ts";
import { isIPv4, isIPv6, ResolveError, type Resolver } from "../../resolver/resolver.ts";
import type { DnsNode, Instance } from "./types.ts";

/** A parsed `override.endpoint`. */
export interface ParsedEndpoint {
  scheme: string;
  host: string;
  port: number;
  path?: string;
  query?: string;
}

export type EndpointParser = (endpoint: string) => ParsedEndpoint | undefined;

/**
 * 3.15/3.16 read an endpoint with one pattern: scheme, then everything up to the first `:` or `/`
 * as the host, then optional digits as the port. It keeps no path or query, and mangles IPv6
 * literals (the host becomes `[`), which is faithful to those releases.
 */
export const parseEndpointByPattern: EndpointParser = (endpoint) => {
  const m = /^(https?):\/\/([^:/]+):?(\d*)\/?.*$/.exec(endpoint);
  if (!m) return undefined;
  const scheme = m[1]!;
  const port = m[3] ? Number(m[3]) : scheme === "https" ? 443 : 80;
  return { scheme, host: m[2]!, port };
};

const parsedAsUrl = new Map<string, ParsedEndpoint | undefined>();

/**
 * 3.17+ parse the endpoint as a URL, keeping path and query, IPv6 hosts without brackets. The
 * answers are remembered (and frozen): every request and timer tick reads the same endpoints.
 */
export const parseEndpointAsUrl: EndpointParser = (endpoint) => {
  if (parsedAsUrl.has(endpoint)) return parsedAsUrl.get(endpoint);
  const parsed = readEndpointAsUrl(endpoint);
  if (parsedAsUrl.size >= 4096) parsedAsUrl.clear();
  parsedAsUrl.set(endpoint, parsed && Object.freeze(parsed));
  return parsed;
};

function readEndpointAsUrl(endpoint: string): ParsedEndpoint | undefined {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    return undefined;
  }
  const scheme = u.protocol.replace(/:$/, "");
  if (scheme !== "http" && scheme !== "https") return undefined;
  const host = u.hostname.replace(/^\[|\]$/g, "");
  if (!host) return undefined;
  const parsed: ParsedEndpoint = { scheme, host, port: u.port ? Number(u.port) : scheme === "https" ? 443 : 80 };
  // URL normalises "" to "/", but a bare "http://h" has no path in APISIX's parser.
  const hasPath = /^[a-z]+:\/\/[^/?#]*\//i.test(endpoint);
  if (hasPath) parsed.path = u.pathname;
  if (u.search) parsed.query = u.search.slice(1);
  return parsed;
}

/**
 * The node an instance points at before DNS: the override endpoint, else the provider's
 * get_node, else its static host and port (scheme https). `useGetNode: false` is the flawed
 * fix candidate that forgets get_node.
 */
export function endpointNode(instance: Instance, parse: EndpointParser, useGetNode = true): DnsNode {
  const endpoint = instance.override?.endpoint;
  if (typeof endpoint === "string") {
    const p = parse(endpoint);
    if (!p) throw new Error(`invalid endpoint: ${endpoint}`);
    const node: DnsNode = { scheme: p.scheme, host: p.host, port: p.port };
    if (p.path !== undefined) node.path = p.path;
    if (p.query !== undefined) node.query = p.query;
    return node;
  }
  const provider = getProvider(instance.provider);
  if (useGetNode && provider.getNode) {
    const n = provider.getNode(instance);
    return { scheme: "https", host: n.host, port: n.port };
  }
  const fallback = provider.getNode ? provider.getNode({}) : undefined;
  const host = provider.host ?? fallback?.host;
  const port = provider.port ?? fallback?.port;
  if (!host || !port) throw new Error(`provider ${instance.provider} has no default host: set override.endpoint`);
  return { scheme: "https", host, port };
}

export interface DnsOutcome {
  nodes: DnsNode[];
  error?: string;
}

/**
 * Resolve a node's domain through our resolver: every address in answer order (3.17+ sort them
 * with `sortNodes`), each node keeping the domain beside the address. An IP literal stays as it is. A failure keeps the domain as host and
 * reports the error (APISIX logs it and carries on).
 */
export function resolveDomain(node: DnsNode, resolver: Resolver): DnsOutcome {
  const host = node.domain ?? node.host;
  if (isIPv4(host) || isIPv6(host)) return { nodes: [{ ...node }] };
  try {
    const ips = resolver.resolveAll(host);
    return { nodes: ips.map((ip) => ({ ...node, host: ip, domain: host })) };
  } catch (e) {
    if (!(e instanceof ResolveError)) throw e;
    return { nodes: [{ ...node }], error: e.message };
  }
}

export function sortNodes(nodes: DnsNode[]): DnsNode[] {
  return [...nodes].sort((a, b) => (a.host === b.host ? a.port - b.port : a.host < b.host ? -1 : 1));
}

export function sameNodes(a: DnsNode[] | undefined, b: DnsNode[]): boolean {
  if (!a || a.length !== b.length) return false;
  return a.every((n, i) => {
    const m = b[i]!;
    return n.host === m.host && n.port === m.port && n.scheme === m.scheme && n.domain === m.domain;
  });
}
