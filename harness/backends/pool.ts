import { createServer, request as httpRequest, validateHeaderName, validateHeaderValue, type Server } from "node:http";
import { connect as netConnect, type AddressInfo, type Socket } from "node:net";
import { isIPv4, isIPv6, isLoopback, Resolver } from "../gateway/resolver/resolver.ts";
import {
  OffLoopbackError,
  type ForwardRequest,
  type ForwardResponse,
  type ProbeConnection,
  type ProbeRequest,
  type ProbeResult,
  type Transport,
} from "../gateway/net/transport.ts";
import { chatCompletionBody, isChatPath, type BackendMode, type BackendSpec } from "./backend.ts";

/** One request a mock backend received, as it arrived. */
export interface ReceivedRequest {
  /** Arrival order across every backend of the pool, from 1. */
  seq: number;
  backend: string;
  /** A health-check probe, or a chat (data-plane) request the gateway forwarded. */
  kind: "probe" | "chat";
  /** When it arrived, ms on the gateway's clock (virtual in process). */
  time: number;
  method: string;
  /** The request target as it arrived: path and query. */
  url: string;
  /** Path without the query. */
  path: string;
  /** Query arguments (a repeated name keeps its last value). */
  query: Record<string, string>;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

/**
 * How many requests a backend keeps (the oldest go first): an hour of probes every second is
 * 3,600, so a scenario never reaches it; a runaway loop cannot eat the memory.
 */
export const MAX_RECEIVED = 20_000;

export interface BackendState {
  spec: BackendSpec;
  /** The 127.0.0.x address its host names resolve to. */
  ip: string;
  probes: number;
  chatRequests: number;
  /** The last chat request it received: path with query, and headers (lower-case names). */
  lastChat?: { path: string; headers: Record<string, string> };
  /** Every request it received, oldest first (at most MAX_RECEIVED). */
  received: ReceivedRequest[];
}

/**
 * The header a pool's own probe client adds so its server can tell a probe from a forwarded
 * request; it is removed before the request is recorded.
 */
const PROBE_MARK = "x-harness-probe";

const splitUrls = new Map<string, { path: string; query: Readonly<Record<string, string>> }>();

/** Path and query of a request target; remembered (frozen), as the same few targets arrive again and again. */
function splitUrl(url: string): { path: string; query: Readonly<Record<string, string>> } {
  let split = splitUrls.get(url);
  if (!split) {
    const q = url.indexOf("?");
    split = q < 0 ? { path: url, query: Object.freeze({}) } : { path: url.slice(0, q), query: Object.freeze(Object.fromEntries(new URLSearchParams(url.slice(q + 1)))) };
    if (splitUrls.size >= 1024) splitUrls.clear();
    splitUrls.set(url, split);
  }
  return split;
}

/**
 * Mock upstreams, addressed the way the gateway sees them (a 127.0.0.x address and any port).
 * `loopback` runs a real HTTP server per backend on 127.0.0.1; `simulated` answers in memory
 * (for high-volume property runs). Both are the gateway's Transport.
 */
export abstract class BackendPool implements Transport {
  abstract readonly kind: "loopback" | "simulated";
  protected readonly byName = new Map<string, BackendState>();
  protected readonly byIp = new Map<string, BackendState>();
  private arrivals = 0;

  /** `now` stamps received requests: the gateway's clock (virtual in process), else real time. */
  constructor(
    readonly resolver: Resolver,
    private readonly now: () => number = Date.now,
  ) {}

  async add(spec: BackendSpec): Promise<BackendState> {
    if (this.byName.has(spec.name)) throw new Error(`backend "${spec.name}" is defined twice`);
    if (spec.hosts.length === 0) throw new Error(`backend "${spec.name}" has no hosts`);
    const first = spec.hosts[0]!;
    const ip = isIPv4(first) ? first : this.resolver.has(first) ? this.resolver.resolveAll(first)[0]! : this.resolver.allocate(first);
    if (!isLoopback(ip)) throw new OffLoopbackError(ip);
    for (const h of spec.hosts) if (!isIPv4(h) && !this.resolver.has(h)) this.resolver.add(h, ip);
    const state: BackendState = { spec: { ...spec, hosts: [...spec.hosts] }, ip, probes: 0, chatRequests: 0, received: [] };
    this.byName.set(spec.name, state);
    this.byIp.set(ip, state);
    await this.started(state);
    return state;
  }

  get(name: string): BackendState {
    const s = this.byName.get(name);
    if (!s) throw new Error(`unknown backend "${name}" (defined: ${[...this.byName.keys()].join(", ") || "none"})`);
    return s;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /**
   * The address an entry names: an IP literal is itself, a backend name its address, a host
   * name its first address in the resolver (the `dns` and `health` steps name nodes this way).
   */
  addressOf(entry: string): string {
    if (isIPv4(entry) || isIPv6(entry)) return entry;
    const b = this.byName.get(entry);
    if (b) return b.ip;
    if (this.resolver.has(entry)) return this.resolver.resolveAll(entry)[0]!;
    throw new Error(`"${entry}" is neither an address, a backend (${this.names().join(", ") || "none"}) nor a known host name`);
  }

  /** What the backends received, oldest first: one backend's, or every backend's in arrival order. */
  received(name?: string): ReceivedRequest[] {
    if (name !== undefined) return [...this.get(name).received];
    return [...this.byName.values()].flatMap((s) => s.received).sort((a, b) => a.seq - b.seq);
  }

  /** Count and keep a request a backend received; `url` is the path with its query. */
  protected record(state: BackendState, r: { kind: ReceivedRequest["kind"]; method: string; url: string; headers: Record<string, string>; body: string; time?: number }): void {
    if (r.kind === "probe") state.probes += 1;
    else {
      state.chatRequests += 1;
      state.lastChat = { path: r.url, headers: { ...r.headers } };
    }
    if (state.received.length >= MAX_RECEIVED) state.received.shift();
    state.received.push({ seq: ++this.arrivals, backend: state.spec.name, kind: r.kind, time: r.time ?? this.now(), method: r.method, url: r.url, ...splitUrl(r.url), headers: r.headers, body: r.body });
  }

  connectOutcomes(): Record<string, "connected" | "refused"> {
    const out: Record<string, "connected" | "refused"> = {};
    for (const b of this.byIp.values()) {
      const known = this.knownConnect(b.spec.mode);
      if (known) out[b.ip] = known;
    }
    return out;
  }

  /** What a connect to a backend in this mode gets, when that does not depend on the probe. */
  protected abstract knownConnect(mode: BackendMode): "connected" | "refused" | undefined;

  async setMode(name: string, mode: BackendMode): Promise<void> {
    const s = this.get(name);
    const was = s.spec.mode;
    s.spec.mode = mode;
    await this.modeChanged(s, was);
  }

  protected abstract started(state: BackendState): Promise<void>;
  protected abstract modeChanged(state: BackendState, was: BackendMode): Promise<void>;
  abstract probe(req: ProbeRequest): Promise<ProbeResult>;

  /** Without connections of its own: the TCP probe, then the request as a probe of its own. */
  async connectProbe(req: ProbeRequest): Promise<{ result: ProbeResult; connection?: ProbeConnection }> {
    const result = await this.probe(req);
    if (result.kind !== "status") return { result };
    return { result, connection: { exchange: (r) => this.probe(r), close: () => undefined } };
  }

  abstract forward(req: ForwardRequest): Promise<ForwardResponse>;
  abstract close(): Promise<void>;

  protected backendFor(ip: string): BackendState | undefined {
    // A backend's address was checked to be loopback when it was added.
    const backend = this.byIp.get(ip);
    if (!backend && !isLoopback(ip)) throw new OffLoopbackError(ip);
    return backend;
  }
}

/**
 * A probe's headers as lua-resty-healthcheck sends them: `req_headers` lines, and a Host header
 * that is always there (the host header, else the hostname, else the ip: healthcheck.lua's
 * run_single_check, line 1118@v3.2.2).
 */
function probeHeaders(req: ProbeRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of req.headers) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  headers.host = req.hostHeader ?? req.ip;
  return headers;
}

function statusFor(mode: BackendMode): number {
  return mode.kind === "status" ? mode.status : 200;
}

/** Backends answered in memory: no sockets, instant, deterministic. */
export class SimulatedBackends extends BackendPool {
  readonly kind = "simulated" as const;

  protected async started(): Promise<void> {}
  protected async modeChanged(): Promise<void> {}

  protected knownConnect(mode: BackendMode): "connected" | "refused" | undefined {
    if (mode.kind === "down") return "refused";
    // A slow one's connect times out when its delay reaches the probe's timeout (probe, below).
    return mode.kind === "slow" ? undefined : "connected";
  }

  async probe(req: ProbeRequest): Promise<ProbeResult> {
    const b = this.backendFor(req.ip);
    if (!b) return { kind: "refused", error: `connect() to ${req.ip}:${req.port} failed (no backend)` };
    const mode = b.spec.mode;
    // A refused connection or a TCP probe counts, but no request arrived to record.
    if (mode.kind === "down" || req.type === "tcp") b.probes += 1;
    else this.record(b, { kind: "probe", method: req.method ?? "GET", url: req.path, headers: probeHeaders(req), body: req.body ?? "", ...(req.atMs !== undefined ? { time: req.atMs } : {}) });
    if (mode.kind === "down") return { kind: "refused", error: `connect() to ${req.ip}:${req.port} failed (111: Connection refused)` };
    if (mode.kind === "slow" && mode.delayMs >= req.timeoutMs) return { kind: "timeout" };
    return req.type === "tcp" ? { kind: "status", status: 0 } : { kind: "status", status: statusFor(mode) };
  }

  async forward(req: ForwardRequest): Promise<ForwardResponse> {
    const b = this.backendFor(req.ip);
    if (!b || b.spec.mode.kind === "down") throw new Error(`connect() to ${req.ip}:${req.port} failed (111: Connection refused)`);
    if (b.spec.mode.kind === "slow" && b.spec.mode.delayMs >= req.timeoutMs) throw new Error("upstream timed out");
    if (isChatPath(req.path)) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
      this.record(b, { kind: "chat", method: req.method, url: req.path, headers, body: req.body });
    }
    const status = statusFor(b.spec.mode);
    const body = status === 200 ? chatCompletionBody(b.spec.name, req.body) : JSON.stringify({ error: { message: `mock ${b.spec.name} answers ${status}` } });
    return { status, headers: { "content-type": "application/json", "x-mock-backend": b.spec.name }, body };
  }

  async close(): Promise<void> {}
}

/** Methods whose empty body Node's HTTP client leaves without a Content-Length. */
const NO_BODY_METHODS = new Set(["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"]);

/**
 * A probe's request as bytes: the same bytes Node's HTTP client (agent: false) writes for it, so
 * the backend receives what it always did, without the client's per-request machinery.
 */
export function probeRequestBytes(req: ProbeRequest): string {
  const method = req.method ?? "GET";
  if (/[^\u0021-\u00ff]/.test(req.path)) throw new TypeError("Request path contains unescaped characters");
  const headers: Record<string, string> = { ...probeHeaders(req), connection: "close", [PROBE_MARK]: String(req.atMs ?? 0) };
  let head = `${method} ${req.path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    validateHeaderName(k);
    validateHeaderValue(k, v);
    head += `${k}: ${v}\r\n`;
  }
  const body = req.body ?? "";
  if (body !== "") head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  else if (!NO_BODY_METHODS.has(method)) head += "Content-Length: 0\r\n";
  return `${head}\r\n${body}`;
}

/** Send a probe's request on a connected socket and read the status line; the socket ends. */
function exchangeOn(sock: Socket, req: ProbeRequest): Promise<ProbeResult> {
  let bytes: string;
  try {
    bytes = probeRequestBytes(req);
  } catch (e) {
    // As Node's client throws on a bad path or header: the caller sees the error.
    sock.destroy();
    return Promise.reject(e as Error);
  }
  return new Promise((resolve) => {
    let done = false;
    let head = "";
    const finish = (r: ProbeResult): void => {
      if (!done) {
        done = true;
        resolve(r);
      }
    };
    sock.setTimeout(req.timeoutMs, () => {
      finish({ kind: "timeout" });
      sock.destroy();
    });
    sock.on("error", (e) => finish({ kind: "refused", error: e.message }));
    sock.on("close", () => finish({ kind: "refused", error: "socket hang up" }));
    sock.on("data", (chunk: Buffer) => {
      if (done) return;
      head += chunk.toString("latin1");
      const eol = head.indexOf("\r\n");
      if (eol < 0) return;
      const m = /^HTTP\/\d\.\d (\d{3})(?: |$)/.exec(head.slice(0, eol));
      if (m) finish({ kind: "status", status: Number(m[1]) });
      else {
        finish({ kind: "refused", error: "Parse Error: Invalid status line" });
        sock.destroy();
      }
    });
    // The backend answers and closes (connection: close); the rest of the answer is read and dropped.
    sock.on("end", () => sock.destroy());
    sock.write(bytes);
  });
}

interface Listening {
  server?: Server;
  port: number;
}

/** Real HTTP servers on 127.0.0.1, one per backend; `down` closes the port. */
export class LoopbackBackends extends BackendPool {
  readonly kind = "loopback" as const;
  private readonly servers = new Map<string, Listening>();

  protected async started(state: BackendState): Promise<void> {
    const l: Listening = { port: 0 };
    this.servers.set(state.spec.name, l);
    if (state.spec.mode.kind !== "down") await this.listen(state, l);
    else await this.reservePort(l);
  }

  protected async modeChanged(state: BackendState, was: BackendMode): Promise<void> {
    const l = this.servers.get(state.spec.name)!;
    if (state.spec.mode.kind === "down" && was.kind !== "down") await this.stopServer(l);
    if (state.spec.mode.kind !== "down" && was.kind === "down") await this.listen(state, l);
  }

  protected knownConnect(mode: BackendMode): "connected" | "refused" {
    // Down: refused without connecting (refusedIfDown); otherwise its server listens, and
    // accepts at once even when it answers late.
    return mode.kind === "down" ? "refused" : "connected";
  }

  /** The real port a backend listens on (for tests and the serve banner). */
  portOf(name: string): number {
    return this.servers.get(name)!.port;
  }

  private async reservePort(l: Listening): Promise<void> {
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    l.port = (s.address() as AddressInfo).port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private listen(state: BackendState, l: Listening): Promise<void> {
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const mode = state.spec.mode;
        const answer = (): void => {
          const probe = req.headers[PROBE_MARK] !== undefined;
          const chat = !probe && req.method === "POST" && isChatPath(req.url ?? "");
          const status = statusFor(mode);
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(req.headers)) if (k !== PROBE_MARK) headers[k] = Array.isArray(v) ? v.join(", ") : (v ?? "");
          // The probe mark carries the prober's own clock when it has one.
          const sent = Number(req.headers[PROBE_MARK]);
          this.record(state, { kind: probe ? "probe" : "chat", method: req.method ?? "GET", url: req.url ?? "", headers, body, ...(probe && sent > 0 ? { time: sent } : {}) });
          res.writeHead(status, { "content-type": "application/json", "x-mock-backend": state.spec.name, connection: "close" });
          res.end(chat && status === 200 ? chatCompletionBody(state.spec.name, body) : JSON.stringify({ backend: state.spec.name, status }));
        };
        if (mode.kind === "slow") setTimeout(answer, mode.delayMs).unref();
        else answer();
      });
    });
    server.keepAliveTimeout = 1;
    return new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(l.port, "127.0.0.1", () => {
        l.port = (server.address() as AddressInfo).port;
        l.server = server;
        resolve();
      });
    });
  }

  private async stopServer(l: Listening): Promise<void> {
    const s = l.server;
    if (!s) return;
    delete l.server;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private address(ip: string, port: number): { host: string; port: number } {
    const b = this.backendFor(ip);
    if (b) return { host: "127.0.0.1", port: this.servers.get(b.spec.name)!.port };
    return { host: ip.replace(/^\[|\]$/g, ""), port };
  }

  /**
   * What a connection to a backend that is down gets: refused, as by the closed port, but
   * without connecting. Its port is free while it is down, and another listener (another run's
   * backend, in a run of many) may take it: a connection would then reach that server instead.
   */
  private refusedIfDown(ip: string): Error | undefined {
    const b = this.backendFor(ip);
    if (b?.spec.mode.kind !== "down") return undefined;
    const e = new Error(`connect ECONNREFUSED 127.0.0.1:${this.portOf(b.spec.name)}`) as NodeJS.ErrnoException;
    e.code = "ECONNREFUSED";
    return e;
  }

  /**
   * A TCP connection to the backend a probe addresses: `connected` with the socket, else what
   * the probe gets (refused, or a timeout after `timeoutMs`).
   */
  private open(req: ProbeRequest): Promise<{ result: ProbeResult; socket?: Socket }> {
    const down = this.refusedIfDown(req.ip);
    if (down) return Promise.resolve({ result: { kind: "refused", error: down.message } });
    const target = this.address(req.ip, req.port);
    return new Promise((resolve) => {
      const sock = netConnect(target);
      const timer = setTimeout(() => {
        sock.destroy();
        resolve({ result: { kind: "timeout" } });
      }, req.timeoutMs);
      sock.once("connect", () => {
        clearTimeout(timer);
        resolve({ result: { kind: "status", status: 0 }, socket: sock });
      });
      sock.once("error", (e) => {
        clearTimeout(timer);
        resolve({ result: { kind: "refused", error: e.message } });
      });
    });
  }

  async probe(req: ProbeRequest): Promise<ProbeResult> {
    const { result, socket } = await this.open(req);
    if (req.type === "tcp" || !socket) {
      socket?.destroy();
      return result;
    }
    return exchangeOn(socket, req);
  }

  /** The probe's connection stays open for its request (one connection per probe, as ngx.socket.tcp makes). */
  async connectProbe(req: ProbeRequest): Promise<{ result: ProbeResult; connection?: ProbeConnection }> {
    const { result, socket } = await this.open(req);
    if (!socket) return { result };
    return { result, connection: { exchange: (r) => exchangeOn(socket, r), close: () => void socket.destroy() } };
  }

  forward(req: ForwardRequest): Promise<ForwardResponse> {
    const down = this.refusedIfDown(req.ip);
    if (down) return Promise.reject(down);
    const target = this.address(req.ip, req.port);
    return new Promise((resolve, reject) => {
      const r = httpRequest(
        { ...target, path: req.path, method: req.method, headers: { ...req.headers, connection: "close" }, agent: false },
        (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headers[k] = v;
            resolve({ status: res.statusCode ?? 502, headers, body });
          });
        },
      );
      r.setTimeout(req.timeoutMs, () => r.destroy(new Error("upstream timed out")));
      r.on("error", reject);
      r.end(req.body);
    });
  }

  async close(): Promise<void> {
    for (const l of this.servers.values()) await this.stopServer(l);
    this.servers.clear();
  }
}
