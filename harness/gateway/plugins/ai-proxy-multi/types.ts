/** Shapes of ai-proxy-multi config as stored in etcd, plus the runtime fields APISIX attaches. */

export interface ActiveChecks {
  type?: "http" | "https" | "tcp";
  timeout?: number;
  http_path?: string;
  host?: string;
  port?: number;
  req_headers?: string[];
  healthy?: { interval?: number; successes?: number; http_statuses?: number[] };
  unhealthy?: {
    interval?: number;
    http_failures?: number;
    tcp_failures?: number;
    timeouts?: number;
    http_statuses?: number[];
  };
  [key: string]: unknown;
}

export interface Checks {
  active: ActiveChecks;
  [key: string]: unknown;
}

/** A resolved endpoint node: the address plus the domain it came from. */
export interface DnsNode {
  host: string;
  port: number;
  scheme: string;
  domain?: string;
  path?: string;
  query?: string;
}

export interface Instance {
  name: string;
  provider: string;
  weight: number;
  priority?: number;
  auth?: { header?: Record<string, string>; query?: Record<string, string>; [key: string]: unknown };
  override?: { endpoint?: string };
  provider_conf?: { project_id?: string; region?: string };
  checks?: Checks;
  /** Runtime-only: set by the request path (3.15/3.16: the node; 3.17+: the node of this request). */
  _dns_value?: DnsNode;
  /** Runtime-only (3.17+): every resolved node. */
  _dns_nodes?: DnsNode[];
  /** Runtime-only (3.17+): the nodes the last picker build found healthy. */
  _healthy_dns_nodes?: DnsNode[];
  /** Runtime-only: bumped each time the resolved nodes change. */
  _nodes_ver?: number;
  [key: string]: unknown;
}

export interface AiProxyMultiConf {
  instances: Instance[];
  balancer?: { algorithm?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface UpstreamNode {
  host: string;
  port: number;
  weight: number;
  priority: number;
  scheme?: string;
  domain?: string;
  name?: string;
}

/** What construct_upstream hands the health-check manager. */
export interface Upstream {
  nodes: UpstreamNode[];
  checks?: Checks;
  _nodes_ver?: number;
  resource_key?: string;
}
