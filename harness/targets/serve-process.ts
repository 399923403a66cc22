import type { Server } from "node:http";
import { LoopbackBackends } from "../backends/pool.ts";
import { checkBackendMode, type BackendSpec } from "../backends/backend.ts";
import { bodyTooLarge, MAX_REQ_BODY } from "../gateway/admin/admin-api.ts";
import { RealClock } from "../gateway/clock/real-clock.ts";
import type { Store } from "../gateway/config/store.ts";
import { Gateway, type EtcdAction } from "../gateway/gateway.ts";
import { closeServer, listen } from "../gateway/http-server.ts";
import { headerOf, jsonResponse, type GatewayRequest, type GatewayResponse } from "../gateway/http-types.ts";
import { Resolver } from "../gateway/resolver/resolver.ts";
import type { GatewayVersion } from "../gateway/engine.ts";
import { WORKER_HEADER } from "./http-target.ts";
import { checkCall, checkDns, checkHealth, checkInjection, checkRestore } from "./control-input.ts";
import type { HealthSetting } from "./target.ts";
import type { Injection, PluginCall } from "../gateway/engine.ts";
import type { LogLevel } from "../gateway/log/error-log.ts";
import { defaultHosts } from "./inproc.ts";

/** The steering endpoints: each checks its body, then acts on the gateway or the backends. */
const STEERING: Record<string, { check: (v: unknown) => object; run: (input: never, gw: Gateway, backends: LoopbackBackends) => Promise<unknown> }> = {
  "/v1/harness/dns": { check: checkDns, run: (i: { name: string; entries: string[] }, gw, b) => gw.setDns(i.name, i.entries.map((e) => b.addressOf(e))) },
  "/v1/harness/inject": { check: checkInjection, run: (i: Injection, gw) => gw.inject(i) },
  "/v1/harness/restore": { check: checkRestore, run: (i: { module: string; function: string }, gw) => gw.restore(i.module, i.function) },
  "/v1/harness/health": {
    check: checkHealth,
    run: (h: HealthSetting, gw, b) => gw.setTargetHealth(h.route, h.instance, { ip: b.addressOf(h.node), port: h.port, healthy: h.healthy, ...(h.hostname !== undefined ? { hostname: h.hostname } : {}) }),
  },
  "/v1/harness/call": { check: checkCall, run: (c: PluginCall, gw) => gw.call(c) },
};

/** The mock world a serve process runs: backends and extra host names. */
export interface World {
  backends: BackendSpec[];
  hosts?: Record<string, string | string[]>;
}

/** Without a world file: one healthy mock per known provider host, named after the host. */
export function defaultWorld(): World {
  return { backends: Object.keys(defaultHosts()).map((h) => ({ name: h, hosts: [h], mode: { kind: "healthy" } })) };
}

export interface ServeOptions {
  version: GatewayVersion;
  store: Store;
  prefix: string;
  port: number;
  adminPort: number;
  controlPort: number;
  world: World;
  logFile: string;
  /** Also print each error log line (serve prints to stdout). */
  echo?: (line: string) => void;
  adminKey?: string;
  seed?: number;
  workers?: number;
  /** The error log's level (default warn, as APISIX's default config). */
  logLevel?: LogLevel;
}

export interface RunningServe {
  ports: { gateway: number; admin: number; control: number };
  backends: Record<string, number>;
  gateway: Gateway;
  close(): Promise<void>;
}

/**
 * The reference gateway behind real HTTP servers on 127.0.0.1, on real time, so a bug report's
 * curl commands run unchanged. The control port serves APISIX's /v1/healthcheck and, under
 * /v1/harness/, what the runner needs to drive it (log with ms times, backend modes, etcd).
 */
export async function startServe(opts: ServeOptions): Promise<RunningServe> {
  const clock = new RealClock();
  const resolver = new Resolver({ ...defaultHosts(), ...(opts.world.hosts ?? {}) });
  const backends = new LoopbackBackends(resolver, () => clock.now());
  const servers: Server[] = [];
  let gateway: Gateway | undefined;
  try {
    for (const b of opts.world.backends) await backends.add(b);
    const gwOpts: Parameters<typeof Gateway.start>[0] = {
      version: opts.version,
      store: opts.store,
      clock,
      transport: backends,
      resolver,
      prefix: opts.prefix,
      logFile: opts.logFile,
      logLevel: opts.logLevel ?? "warn",
      seed: opts.seed ?? 1,
      workers: opts.workers ?? 1,
    };
    if (opts.echo) gwOpts.logSink = opts.echo;
    if (opts.adminKey) gwOpts.adminKey = opts.adminKey;
    const gw = await Gateway.start(gwOpts);
    gateway = gw;
    const control = async (req: GatewayRequest): Promise<GatewayResponse> => {
      const path = req.path.split("?")[0]!;
      const method = req.method.toUpperCase();
      if (path === "/v1/harness/log" && method === "GET") return jsonResponse(200, gw.log.lines.map((l) => ({ time: l.time, level: l.level, text: l.text })));
      if (path === "/v1/harness/info" && method === "GET") return jsonResponse(200, { version: opts.version.name, engine: opts.version.engine, prefix: opts.prefix, store: opts.store.description, backends: Object.fromEntries(backends.names().map((n) => [n, backends.portOf(n)])) });
      if (path === "/v1/harness/applied" && method === "GET") {
        const asked = new URLSearchParams(req.path.split("?")[1] ?? "").get("revision") ?? "latest";
        if (asked !== "latest" && !/^\d{1,15}$/.test(asked)) return jsonResponse(400, { error_msg: `revision: expected a whole number or "latest", got "${asked}"` });
        const rev = asked === "latest" ? await opts.store.revision() : Number(asked);
        await gw.config.waitForRevision(rev);
        return jsonResponse(200, { applied: gw.config.appliedRevision });
      }
      const b = /^\/v1\/harness\/backends\/([^/]+)$/.exec(path);
      if (b && method === "POST") {
        const name = decodeURIComponent(b[1]!);
        if (!backends.names().includes(name)) return jsonResponse(404, { error_msg: `unknown backend "${name}" (defined: ${backends.names().join(", ") || "none"})` });
        let body: unknown;
        try {
          body = JSON.parse(req.body);
        } catch (e) {
          return jsonResponse(400, { error_msg: `invalid request body: ${(e as Error).message}` });
        }
        const mode = checkBackendMode(body);
        if (typeof mode === "string") return jsonResponse(400, { error_msg: mode });
        await backends.setMode(name, mode);
        return jsonResponse(200, { ok: true });
      }
      if (path === "/v1/harness/received" && method === "GET") return jsonResponse(200, backends.received());
      if (path === "/v1/harness/address" && method === "GET") {
        const entry = new URLSearchParams(req.path.split("?")[1] ?? "").get("entry") ?? "";
        try {
          return jsonResponse(200, { address: backends.addressOf(entry) });
        } catch (e) {
          return jsonResponse(400, { error_msg: (e as Error).message });
        }
      }
      const steer = STEERING[path];
      if (steer && method === "POST") {
        let body: unknown;
        try {
          body = JSON.parse(req.body);
        } catch (e) {
          return jsonResponse(400, { error_msg: `invalid request body: ${(e as Error).message}` });
        }
        const input = steer.check(body);
        if ("error" in input) return jsonResponse(400, { error_msg: input.error });
        try {
          return jsonResponse(200, (await steer.run(input as never, gw, backends)) ?? { ok: true });
        } catch (e) {
          return jsonResponse(400, { error_msg: (e as Error).message });
        }
      }
      const e = /^\/v1\/harness\/etcd\/(restart|compact|disconnect|reconnect)$/.exec(path);
      if (e && method === "POST") {
        await gw.etcd(e[1] as EtcdAction);
        return jsonResponse(200, { ok: true });
      }
      return gw.handleControl(req);
    };
    const data = await listen((r) => {
      const w = headerOf(r, WORKER_HEADER);
      return gw.handleData(r, w === undefined ? undefined : Number(w));
    }, opts.port);
    servers.push(data.server);
    // As APISIX: the key and path are checked before the body is read, and at most 1.5 MiB of it is.
    const admin = await listen((r) => gw.handleAdmin(r), opts.adminPort, { precheck: (h) => gw.admin.precheck(h), maxBody: { bytes: MAX_REQ_BODY, answer: bodyTooLarge } });
    servers.push(admin.server);
    const ctl = await listen(control, opts.controlPort, { maxBody: { bytes: 64 * 1024, answer: (size) => jsonResponse(413, { error_msg: `request body of ${size} bytes is too large for the control API` }) } });
    servers.push(ctl.server);
    return {
      ports: { gateway: data.port, admin: admin.port, control: ctl.port },
      backends: Object.fromEntries(backends.names().map((n) => [n, backends.portOf(n)])),
      gateway: gw,
      close: async () => {
        for (const s of servers) await closeServer(s);
        await gw.stop();
        clock.stopAll();
        await backends.close();
      },
    };
  } catch (e) {
    for (const s of servers) await closeServer(s);
    await gateway?.stop();
    clock.stopAll();
    await backends.close();
    throw e;
  }
}
