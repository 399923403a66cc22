import { Ajv, type ValidateFunction } from "ajv";
import { describeSchemaError } from "../admin/schema-errors.ts";
import type { Clock } from "../clock/clock.ts";
import type { ProbeRequest, Transport } from "../net/transport.ts";
import { answerSharedDictCall, type SharedDict } from "../shared-dict.ts";
import type { LuaCall } from "./lua-worker.ts";

/**
 * The answers to what the Lua side asks while it runs: socket operations of the checker's probes
 * (answered by the mock backends through the gateway's transport), JSON Schema checks (APISIX's
 * own schema tables, validated here), and the shared dicts when there are several workers.
 */
export interface WorldCallsEnv {
  transport: Transport;
  clock: Clock;
  sharedDicts: Map<string, SharedDict>;
}

const REASONS: Record<number, string> = { 200: "OK", 201: "Created", 204: "No Content", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout" };

/** A raw HTTP request as lua-resty-healthcheck writes it: request line, headers, blank line. */
export function parseRawRequest(raw: string): { method: string; path: string; headers: [string, string][]; body: string } {
  const end = raw.indexOf("\r\n\r\n");
  const head = end >= 0 ? raw.slice(0, end) : raw;
  const body = end >= 0 ? raw.slice(end + 4) : "";
  const [requestLine = "", ...lines] = head.split("\r\n");
  const [method = "GET", path = "/"] = requestLine.split(" ");
  const headers: [string, string][] = [];
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers.push([l.slice(0, i).trim(), l.slice(i + 1).trim()]);
  }
  return { method, path, headers, body };
}

// APISIX's schema tables are the same in every run of a version: compile each once per process.
const validators = new Map<string, ValidateFunction>();
const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: false, validateSchema: false, allowUnionTypes: true, verbose: true });

function validatorFor(schemaText: string): ValidateFunction {
  let v = validators.get(schemaText);
  if (!v) {
    v = ajv.compile(JSON.parse(schemaText) as object);
    validators.set(schemaText, v);
  }
  return v;
}

export class WorldCalls {
  /** Schema texts by (worker, id): each worker numbers the tables it sends. */
  private readonly schemas = new Map<string, string>();
  /**
   * Probe connections between the Lua socket's connect and its request, by worker and address.
   * The shim sends a socket's request right after its connect (no other coroutine runs between),
   * so the next exchange of that worker to that address is this connection's; a connect that is
   * not followed by one (a TCP check) is ended by the next connect there, or when the run ends.
   * A connect made ahead (connectAhead) is held here the same way.
   */
  private readonly sockets = new Map<string, Promise<Opened>>();

  constructor(private readonly env: WorldCallsEnv) {}

  async answer(worker: number, msg: LuaCall): Promise<Record<string, unknown>> {
    switch (msg.call) {
      case "tcp":
        return msg.op === "connect" ? this.connect(worker, msg) : this.exchange(worker, msg);
      case "schema":
        return this.schema(worker, msg);
      case "shm":
        return answerSharedDictCall(this.env.sharedDicts, this.env.clock, msg);
      default:
        return { err: `the harness answers no "${msg.call}" call` };
    }
  }

  /** Connect as the Lua socket asked, holding the connection for its request. */
  private open(worker: number, msg: Record<string, unknown>): Promise<Opened> {
    const key = socketKey(worker, msg);
    this.drop(key);
    const opened = this.env.transport.connectProbe({ ip: String(msg.ip), port: Number(msg.port), type: "tcp", path: "/", headers: [], timeoutMs: Number(msg.timeout ?? 60000), ...sentAt(msg) });
    // A refusal to connect at all (an address off loopback) reaches whoever awaits it; held
    // here, it must not also count as unhandled.
    opened.catch(() => undefined);
    this.sockets.set(key, opened);
    return opened;
  }

  private drop(key: string): void {
    const held = this.sockets.get(key);
    if (!held) return;
    this.sockets.delete(key);
    void held.then((o) => o.connection?.close(), () => undefined);
  }

  private async connect(worker: number, msg: LuaCall): Promise<Record<string, unknown>> {
    const { result: r } = await this.open(worker, msg);
    if (r.kind === "status") return { ok: true };
    if (r.kind === "timeout") return { err: "timeout" };
    return { err: "connection refused" };
  }

  /**
   * A connect the Lua side did not wait for: the address was among the transport's
   * connectOutcomes, sent with the command, so the socket went on with that outcome at once.
   * The connection is made all the same (the request goes on it), meanwhile.
   */
  connectAhead(worker: number, msg: Record<string, unknown>): void {
    void this.open(worker, msg);
  }

  /** End every connection still held (the run is over). */
  close(): void {
    for (const key of [...this.sockets.keys()]) this.drop(key);
  }

  private async exchange(worker: number, msg: LuaCall): Promise<Record<string, unknown>> {
    const req = parseRawRequest(String(msg.data ?? ""));
    const host = req.headers.find(([k]) => k.toLowerCase() === "host")?.[1];
    const headers = req.headers.filter(([k]) => !["host", "connection"].includes(k.toLowerCase())).map(([k, v]) => `${k}: ${v}`);
    // The method and body as the library wrote them (v3.2.2 always GETs; a later one may POST).
    const probe: ProbeRequest = { ip: String(msg.ip), port: Number(msg.port), type: "http", path: req.path, headers, timeoutMs: Number(msg.timeout ?? 60000), method: req.method, ...sentAt(msg) };
    if (req.body !== "") probe.body = req.body;
    const full = host !== undefined ? { ...probe, hostHeader: host } : probe;
    // On the connection its connect opened, else (none held) a connection of its own.
    const key = socketKey(worker, msg);
    const held = this.sockets.get(key);
    this.sockets.delete(key);
    const opened = held ? await held : undefined;
    // A connect made ahead can still fail (a backend taken down meanwhile, in real time): the
    // request then fails as on a connection the peer ended.
    const r = opened ? (opened.connection ? await opened.connection.exchange(full) : opened.result) : await this.env.transport.probe(full);
    if (r.kind === "timeout") return { err: "timeout" };
    if (r.kind === "refused") return { err: "connection reset by peer" };
    return { data: `HTTP/1.1 ${r.status} ${REASONS[r.status] ?? "Unknown"}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n` };
  }

  private schema(worker: number, msg: LuaCall): Record<string, unknown> {
    const key = `${worker}:${String(msg.id)}`;
    if (typeof msg.schema === "string") this.schemas.set(key, msg.schema);
    const text = this.schemas.get(key);
    if (!text) return { ok: false, err: `schema ${key} was never sent` };
    let validate: ValidateFunction;
    try {
      validate = validatorFor(text);
    } catch (e) {
      return { ok: false, err: `the harness cannot compile this schema: ${(e as Error).message}` };
    }
    const value = JSON.parse(String(msg.value)) as unknown;
    if (!validate(value)) return { ok: false, err: describeSchemaError(validate.errors) };
    return { ok: true, filled: JSON.stringify(value) };
  }
}

type Opened = Awaited<ReturnType<Transport["connectProbe"]>>;

function socketKey(worker: number, msg: Record<string, unknown>): string {
  return `${worker} ${String(msg.ip)}:${String(msg.port)}`;
}

/** The worker's clock when it probed: it runs ahead of the harness's clock between wake-ups. */
function sentAt(msg: Record<string, unknown>): { atMs?: number } {
  return typeof msg.at_ms === "number" ? { atMs: msg.at_ms } : {};
}
