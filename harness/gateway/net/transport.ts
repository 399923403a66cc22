/**
 * How the gateway reaches upstream nodes: health-check probes and forwarded chat requests.
 * Node addresses are what APISIX would see (the resolved 127.0.0.x and the logical port, e.g. 443);
 * a transport maps them onto mock backends, and refuses anything outside loopback.
 */

export interface ProbeRequest {
  ip: string;
  port: number;
  type: "http" | "https" | "tcp";
  path: string;
  /** Host header (checks.active.host, or the node's domain). */
  hostHeader?: string;
  /** `Name: value` lines, as in checks.active.req_headers. */
  headers: string[];
  timeoutMs: number;
  /** Default GET; a library that sends another method (and a body) says so. */
  method?: string;
  body?: string;
  /** When the prober sent it on the gateway's clock, if not now (a Lua worker runs ahead between wake-ups). */
  atMs?: number;
}

export type ProbeResult =
  | { kind: "status"; status: number }
  | { kind: "timeout" }
  | { kind: "refused"; error: string };

export interface ForwardRequest {
  ip: string;
  port: number;
  scheme: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

export interface ForwardResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A probe's own TCP connection (ngx.socket.tcp after connect): at most one request goes on it. */
export interface ProbeConnection {
  /** Send the probe's HTTP request on this connection and read the answer's status; the connection ends. */
  exchange(req: ProbeRequest): Promise<ProbeResult>;
  /** End it unused (a TCP check connects only). */
  close(): void;
}

export interface Transport {
  probe(req: ProbeRequest): Promise<ProbeResult>;
  /**
   * Connect as a probe does (`type: "tcp"`), keeping the connection for its request: what
   * `probe` answers for a TCP probe, plus the connection when it succeeded.
   */
  connectProbe(req: ProbeRequest): Promise<{ result: ProbeResult; connection?: ProbeConnection }>;
  /**
   * The addresses whose connect outcome is known without connecting: a backend's, by its state
   * ("refused" while it is down, "connected" otherwise). A prober may act on it at once and
   * leave the connect (connectProbe, which still runs) to go on meanwhile.
   */
  connectOutcomes(): Record<string, "connected" | "refused">;
  forward(req: ForwardRequest): Promise<ForwardResponse>;
  close(): Promise<void>;
}

export class OffLoopbackError extends Error {
  constructor(ip: string) {
    super(`refusing to connect to ${ip}: only loopback addresses are allowed`);
  }
}
