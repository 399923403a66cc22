import { existsSync, readFileSync } from "node:fs";
import type { BackendMode } from "../backends/backend.ts";
import type { CheckerView, EtcdAction, PoolsView } from "../gateway/gateway.ts";
import type { Injection, PluginCall, PluginCallResult } from "../gateway/engine.ts";
import type { ReceivedRequest } from "../backends/pool.ts";
import { sleep } from "../gateway/clock/real-clock.ts";
import { isIPv4, isIPv6, isLoopback } from "../gateway/resolver/resolver.ts";
import { TargetUnsupported, type HealthSetting, type HttpResult, type ObservedLogLine, type Target } from "./target.ts";

export interface HttpTargetOptions {
  kind: "serve" | "external";
  adminUrl: string;
  gatewayUrl: string;
  controlUrl: string;
  apiKey: string;
  /** Error log file to read (external); a serve process is asked over its control port instead. */
  errorLog?: string;
  /** The target is a reference-gateway serve process (has /v1/harness/ on the control port). */
  harnessControl: boolean;
  /** Without harness control: how long to let the gateway apply an admin write. */
  settleMs?: number;
  onClose?: () => Promise<void>;
  /** Ends every call and wait of this target (the run was interrupted or timed out). */
  signal?: AbortSignal;
}

/** Which worker a serve process hands a request to (the harness's own header). */
export const WORKER_HEADER = "x-harness-worker";

/** nginx's `YYYY/MM/DD HH:MM:SS [level]` prefix (APISIX writes local time; we read it as such). */
const LOG_LINE = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2}) \[(\w+)\]/;

export function parseErrorLog(text: string): ObservedLogLine[] {
  const out: ObservedLogLine[] = [];
  for (const line of text.split("\n")) {
    const m = LOG_LINE.exec(line);
    if (!m) continue;
    const [, y, mo, d, h, mi, s, level] = m;
    out.push({ time: new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)).getTime(), level: level!, text: line });
  }
  return out;
}

/** Only loopback URLs: a scenario never drives anything off this machine. */
export function checkLoopbackUrl(option: string, url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${option}: not a URL: "${url}"`);
  }
  const host = u.hostname === "localhost" ? "127.0.0.1" : u.hostname;
  if (!isLoopback(host)) throw new Error(`${option}: ${url} is not on loopback (127.0.0.0/8, ::1); the harness sends no traffic elsewhere`);
  return u;
}

/** A gateway reached over HTTP: a `serve` process or an external APISIX. Time is real. */
export class HttpTarget implements Target {
  constructor(private readonly opts: HttpTargetOptions) {}

  get kind(): "serve" | "external" {
    return this.opts.kind;
  }

  get description(): string {
    return `${this.opts.kind} gateway (admin ${this.opts.adminUrl}, data ${this.opts.gatewayUrl}, control ${this.opts.controlUrl})`;
  }

  private async http(base: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<HttpResult> {
    const timeout = AbortSignal.timeout(10_000);
    const init: RequestInit = { method, headers, signal: this.opts.signal ? AbortSignal.any([this.opts.signal, timeout]) : timeout };
    if (body !== undefined && body !== "" && method !== "GET") init.body = body;
    const res = await fetch(base + path, init);
    const out: Record<string, string> = {};
    res.headers.forEach((v, k) => (out[k] = v));
    return { status: res.status, headers: out, body: await res.text() };
  }

  async admin(method: string, path: string, body = "", headers: Record<string, string> = {}): Promise<HttpResult> {
    const res = await this.http(this.opts.adminUrl, method, path, { "x-api-key": this.opts.apiKey, "content-type": "application/json", ...headers }, body);
    if (method !== "GET" && res.status < 300) await this.settle(res.body);
    return res;
  }

  /** Wait until the gateway has applied a write: asked of a serve process, waited for otherwise. */
  private async settle(body: string): Promise<void> {
    if (!this.opts.harnessControl) {
      await sleep(this.opts.settleMs ?? 200, this.opts.signal);
      return;
    }
    let revision: number | undefined;
    try {
      revision = (JSON.parse(body) as { modifiedIndex?: number }).modifiedIndex;
    } catch {
      revision = undefined;
    }
    // A DELETE answer carries no revision: then wait for whatever the store has now.
    await this.http(this.opts.controlUrl, "GET", `/v1/harness/applied?revision=${revision ?? "latest"}`, {});
  }

  request(method: string, path: string, headers: Record<string, string>, body: string, worker?: number): Promise<HttpResult> {
    if (worker === undefined) return this.http(this.opts.gatewayUrl, method, path, headers, body);
    // nginx gives no client a say in which worker takes a connection; a serve process does.
    if (!this.opts.harnessControl) throw new TargetUnsupported("a request to a given worker needs a serve target; a real APISIX picks the worker itself");
    return this.http(this.opts.gatewayUrl, method, path, { ...headers, [WORKER_HEADER]: String(worker) }, body);
  }

  wait(ms: number, signal?: AbortSignal): Promise<void> {
    const signals = [signal, this.opts.signal].filter((s): s is AbortSignal => s !== undefined);
    return sleep(ms, signals.length > 1 ? AbortSignal.any(signals) : signals[0]);
  }

  now(): number {
    return Date.now();
  }

  /** Real time cannot be stopped a millisecond before a timer of another process (nor of APISIX's workers). */
  async nextTick(): Promise<number> {
    throw new TargetUnsupported(`tick steps are not available on the ${this.opts.kind} target: stopping just before or after a manager tick needs the in-process target's virtual clock`);
  }

  async logLines(): Promise<ObservedLogLine[]> {
    if (this.opts.harnessControl) {
      const res = await this.http(this.opts.controlUrl, "GET", "/v1/harness/log", {});
      return JSON.parse(res.body) as ObservedLogLine[];
    }
    if (!this.opts.errorLog) throw new TargetUnsupported("log assertions need --error-log on an external target");
    if (!existsSync(this.opts.errorLog)) return [];
    return parseErrorLog(readFileSync(this.opts.errorLog, "utf8"));
  }

  /**
   * The harness's own view of the checkers (a serve process). APISIX's /v1/healthcheck never lists
   * ai-proxy-multi's checkers (control/v1.lua@3.15.0:97-110), so on an external APISIX they are
   * not observable.
   */
  async checkers(): Promise<CheckerView[]> {
    if (!this.opts.harnessControl) throw new TargetUnsupported("checkers are not observable on this target: APISIX's GET /v1/healthcheck does not list ai-proxy-multi's checkers");
    const res = await this.http(this.opts.controlUrl, "GET", "/v1/harness/checkers", {});
    if (res.status !== 200) throw new Error(`GET ${this.opts.controlUrl}/v1/harness/checkers answered ${res.status}`);
    return JSON.parse(res.body) as CheckerView[];
  }

  async pools(): Promise<PoolsView | undefined> {
    if (!this.opts.harnessControl) return undefined;
    const res = await this.http(this.opts.controlUrl, "GET", "/v1/harness/pools", {});
    return res.status === 200 ? (JSON.parse(res.body) as PoolsView) : undefined;
  }

  async setBackend(name: string, mode: BackendMode): Promise<void> {
    if (!this.opts.harnessControl) throw new TargetUnsupported("backend steps need a target with harness control (serve); an external APISIX's upstreams are its own");
    const res = await this.http(this.opts.controlUrl, "POST", `/v1/harness/backends/${encodeURIComponent(name)}`, { "content-type": "application/json" }, JSON.stringify(mode));
    if (res.status !== 200) throw new Error(`backend ${name}: ${res.status} ${res.body}`);
  }

  async etcd(action: EtcdAction): Promise<void> {
    if (!this.opts.harnessControl) throw new TargetUnsupported("etcd steps need a target with harness control (serve)");
    const res = await this.http(this.opts.controlUrl, "POST", `/v1/harness/etcd/${action}`, {});
    if (res.status !== 200) throw new Error(`etcd ${action}: ${res.status} ${res.body}`);
  }

  /** A serve process's /v1/harness/ endpoint; a real APISIX has none, so `why` says what is missing. */
  private async control<T>(what: string, why: string, method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    if (!this.opts.harnessControl) throw new TargetUnsupported(`${what} ${why}`);
    const res = await this.http(this.opts.controlUrl, method, path, body === undefined ? {} : { "content-type": "application/json" }, body === undefined ? undefined : JSON.stringify(body));
    if (res.status !== 200) throw new Error(`${what}: ${res.status} ${res.body}`);
    return JSON.parse(res.body) as T;
  }

  received(): Promise<ReceivedRequest[]> {
    return this.control("received assertions", "need a target with harness control (serve): an external APISIX's upstreams are not the harness's mock backends", "GET", "/v1/harness/received");
  }

  async addressOf(entry: string): Promise<string> {
    if (isIPv4(entry) || isIPv6(entry)) return entry;
    const r = await this.control<{ address: string }>("a backend or host name", "needs a target with harness control (serve): an external APISIX resolves names with its own resolver", "GET", `/v1/harness/address?entry=${encodeURIComponent(entry)}`);
    return r.address;
  }

  async dns(name: string, entries: string[]): Promise<void> {
    await this.control("dns steps", "need a target with harness control (serve): an external APISIX resolves names with its own resolver", "POST", "/v1/harness/dns", { name, entries });
  }

  async inject(i: Injection): Promise<void> {
    await this.control("inject steps", "need a target with harness control (serve): the harness cannot reach into an external APISIX's workers", "POST", "/v1/harness/inject", i);
  }

  async restore(module: string, fn: string): Promise<void> {
    await this.control("inject steps", "need a target with harness control (serve): the harness cannot reach into an external APISIX's workers", "POST", "/v1/harness/restore", { module, function: fn });
  }

  async setHealth(h: HealthSetting): Promise<void> {
    await this.control("health steps", "need a target with harness control (serve): an external APISIX's shared dict is out of the harness's reach", "POST", "/v1/harness/health", h);
  }

  call(c: PluginCall): Promise<PluginCallResult[]> {
    return this.control("call steps", "need a target with harness control (serve): the harness cannot call into an external APISIX's workers", "POST", "/v1/harness/call", c);
  }

  async close(): Promise<void> {
    await this.opts.onClose?.();
  }
}
