/**
 * A small client for etcd's v3 JSON gateway: etcd's gRPC API as JSON over HTTP/1.1. Unary calls
 * are POSTs (/v3/kv/range, /v3/kv/put, /v3/kv/deleterange, /v3/kv/compaction,
 * /v3/maintenance/status); a watch is one long POST to /v3/watch whose answer streams one JSON
 * object per line, `{"result": {...}}`. Keys and values travel base64, int64 fields as strings.
 * This is the API APISIX itself speaks to etcd (lua-resty-etcd's v3 driver), so the harness meets
 * etcd as the gateway under test does.
 *
 * Built for a harness, not a service: every call has a deadline, nothing is retried past one
 * attempt per endpoint (plus one resend on a kept-alive socket the server had already closed),
 * a watch whose stream ends is not reopened, and close() ends every connection at once.
 */

import { Agent, request, type ClientRequest, type IncomingMessage } from "node:http";

export interface RawKeyValue {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
}

/** What every response carries. Fields at their zero value are left out of etcd's JSON. */
export interface ResponseHeader {
  revision?: string;
}

export interface RangeRequest {
  key: string;
  range_end?: string;
  revision?: string;
  count_only?: boolean;
}
export interface RangeResponse {
  header?: ResponseHeader;
  kvs?: RawKeyValue[];
}
export interface PutResponse {
  header?: ResponseHeader;
}
export interface DeleteRangeResponse {
  header?: ResponseHeader;
  deleted?: string;
}
export interface StatusResponse {
  header?: ResponseHeader;
  version?: string;
}

export interface WatchCreateRequest {
  key: string;
  range_end?: string;
  start_revision?: string;
}
export interface WatchResponse {
  header?: ResponseHeader;
  created?: boolean;
  canceled?: boolean;
  /** Set on a cancel because start_revision was compacted: the oldest revision still kept. */
  compact_revision?: string;
  cancel_reason?: string;
  events?: { type?: "PUT" | "DELETE"; kv?: RawKeyValue }[];
}

/**
 * A call that failed. `unreachable`: no answer (refused, reset, timed out, closed); `refused`:
 * etcd answered with an error, its gRPC status code in `grpcCode`.
 */
export class GatewayError extends Error {
  constructor(
    message: string,
    readonly kind: "unreachable" | "refused" | "closed",
    readonly grpcCode?: number,
  ) {
    super(message);
  }
}

/** gRPC status codes that mean "etcd is not there" rather than "etcd said no". */
const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;

/** Errors of a connection that never reached the server: the next endpoint may be tried. */
const CONNECT_FAILED = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "ENOTFOUND", "EAI_AGAIN"]);

export const toBase64 = (s: string | Buffer): string => (typeof s === "string" ? Buffer.from(s, "utf8") : s).toString("base64");
export const fromBase64 = (s: string | undefined): string => (s ? Buffer.from(s, "base64").toString("utf8") : "");

/**
 * The range of every key that starts with `prefix`: up to the prefix with its last byte plus one
 * (etcd's prefix rule; UTF-8 has no byte 0xff, so that byte never overflows). The empty prefix
 * means every key: etcd spells that ["\0", "\0").
 */
export function prefixRange(prefix: string): { key: string; range_end: string } {
  if (prefix === "") return { key: toBase64("\0"), range_end: toBase64("\0") };
  const end = Buffer.from(prefix, "utf8");
  end[end.length - 1]!++;
  return { key: toBase64(prefix), range_end: toBase64(end) };
}

function codeOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** etcd's error body: {"error": "...", "message": "...", "code": 14}. */
function refusal(status: number, text: string): GatewayError {
  let body: { message?: unknown; error?: unknown; code?: unknown } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = undefined;
  }
  const message = typeof body?.message === "string" ? body.message : typeof body?.error === "string" ? body.error : `HTTP ${status}: ${text.slice(0, 200).trim() || "no body"}`;
  const grpcCode = typeof body?.code === "number" ? body.code : undefined;
  const silent = grpcCode === UNAVAILABLE || grpcCode === DEADLINE_EXCEEDED;
  return new GatewayError(message, silent ? "unreachable" : "refused", grpcCode);
}

export interface WatchListener {
  /** One `result` of the stream. */
  onResponse(res: WatchResponse): void;
  /**
   * The stream is over and will not be reopened: it could not be opened, etcd answered with an
   * error, etcd ended it, or the connection broke. Never called after cancel().
   */
  onEnd(why: string, refused: boolean): void;
}

export interface WatchStream {
  /** Close the stream (etcd drops the watch with the connection). Idempotent, synchronous. */
  cancel(): void;
}

export class GatewayClient {
  private readonly urls: URL[];
  /** Kept-alive connections for unary calls. A watch holds its own until it ends. */
  private readonly agent = new Agent({ keepAlive: true });
  /** Requests under way: close() ends them. */
  private readonly live = new Set<ClientRequest>();
  /** The endpoint that answered last: calls go there first. */
  private preferred = 0;
  private closed = false;

  constructor(
    endpoints: string[],
    private readonly timeoutMs: number,
  ) {
    this.urls = endpoints.map((e) => {
      const url = new URL(e);
      if (url.protocol !== "http:") throw new Error(`etcd endpoint ${e}: only http:// is supported (etcd's JSON gateway over plain HTTP)`);
      return url;
    });
    if (this.urls.length === 0) throw new Error("an etcd client needs at least one endpoint");
  }

  range(req: RangeRequest): Promise<RangeResponse> {
    return this.call("/v3/kv/range", req, true);
  }

  put(key: string, value: string): Promise<PutResponse> {
    return this.call("/v3/kv/put", { key: toBase64(key), value: toBase64(value) }, false);
  }

  deleteRange(req: { key: string; range_end?: string }): Promise<DeleteRangeResponse> {
    return this.call("/v3/kv/deleterange", req, false);
  }

  /** physical: resolve only once etcd has really dropped the history. */
  compact(revision: number, physical: boolean): Promise<unknown> {
    return this.call("/v3/kv/compaction", { revision: String(revision), physical }, false);
  }

  status(): Promise<StatusResponse> {
    return this.call("/v3/maintenance/status", {}, true);
  }

  /** Open a watch stream. Failures arrive through the listener, never as a throw. */
  watch(create: WatchCreateRequest, listener: WatchListener): WatchStream {
    const payload = JSON.stringify({ create_request: create });
    let req: ClientRequest | undefined;
    let over = false;
    const end = (why: string, refused = false): void => {
      if (over) return;
      over = true;
      if (req) this.live.delete(req);
      req?.destroy();
      listener.onEnd(why, refused);
    };
    const open = (attempt: number): void => {
      if (this.closed) return end("the client was closed");
      const at = this.endpointFor(attempt);
      const r = this.post(at, "/v3/watch", payload);
      req = r;
      r.on("response", (res) => {
        if (over) return;
        this.preferred = at;
        if (res.statusCode !== 200) {
          void bodyOf(res).then(
            (text) => end(refusal(res.statusCode ?? 0, text).message, true),
            (e: Error) => end(e.message),
          );
          return;
        }
        readLines(res, (line) => {
          if (over) return;
          let msg: { result?: WatchResponse; error?: { message?: string } };
          try {
            msg = JSON.parse(line) as typeof msg;
          } catch {
            return end(`etcd sent a watch message that is not JSON: ${line.slice(0, 200)}`);
          }
          if (msg.error) return end(`etcd's gateway reported: ${msg.error.message ?? JSON.stringify(msg.error)}`);
          if (msg.result) listener.onResponse(msg.result);
        });
        res.on("end", () => end("etcd ended the watch stream"));
        res.on("error", (e) => end(`the watch stream broke (${e.message})`));
        res.on("close", () => end("the watch stream closed"));
      });
      r.on("error", (e) => {
        if (over) return;
        this.live.delete(r);
        if (CONNECT_FAILED.has(codeOf(e) ?? "") && attempt + 1 < this.urls.length) return open(attempt + 1);
        end(e.message);
      });
      r.end(payload);
    };
    open(0);
    return {
      cancel: () => {
        over = true;
        if (req) this.live.delete(req);
        req?.destroy();
      },
    };
  }

  /** End every request under way and every kept connection. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const req of this.live) req.destroy(new GatewayError("the client was closed", "closed"));
    this.live.clear();
    this.agent.destroy();
  }

  private endpointFor(attempt: number): number {
    return (this.preferred + attempt) % this.urls.length;
  }

  private post(at: number, path: string, payload: string): ClientRequest {
    const req = request(new URL(path, this.urls[at]), {
      method: "POST",
      agent: this.agent,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
    });
    this.live.add(req);
    return req;
  }

  /**
   * One unary call. An endpoint that refuses the connection passes the call to the next one. A
   * read sent on a kept-alive socket that turns out closed (etcd restarted meanwhile) is sent once
   * more; a write is not, as etcd may have applied it.
   */
  private async call<T>(path: string, body: object, idempotent: boolean): Promise<T> {
    const payload = JSON.stringify(body);
    let resent = false;
    for (let attempt = 0; ; ) {
      if (this.closed) throw new GatewayError("the client was closed", "closed");
      const at = this.endpointFor(attempt);
      const outcome = await this.once<T>(at, path, payload);
      if (outcome.ok) {
        this.preferred = at;
        return outcome.value;
      }
      const { err, reusedSocket } = outcome;
      const code = codeOf(err);
      if (idempotent && reusedSocket && !resent && (code === "ECONNRESET" || code === "EPIPE")) {
        resent = true;
        continue;
      }
      if (CONNECT_FAILED.has(code ?? "") && ++attempt < this.urls.length) continue;
      throw err instanceof GatewayError ? err : new GatewayError(err.message, "unreachable");
    }
  }

  private once<T>(at: number, path: string, payload: string): Promise<{ ok: true; value: T } | { ok: false; err: Error; reusedSocket: boolean }> {
    return new Promise((resolve) => {
      const req = this.post(at, path, payload);
      let settled = false;
      let timedOut: GatewayError | undefined;
      const timer = setTimeout(() => {
        timedOut = new GatewayError(`POST ${path} timed out after ${this.timeoutMs} ms`, "unreachable");
        req.destroy(timedOut);
      }, this.timeoutMs);
      const done = (err: Error | undefined, value?: T): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.live.delete(req);
        resolve(err ? { ok: false, err: timedOut ?? err, reusedSocket: req.reusedSocket } : { ok: true, value: value as T });
      };
      req.on("response", (res) => {
        bodyOf(res).then((text) => {
          if (res.statusCode !== 200) return done(refusal(res.statusCode ?? 0, text));
          try {
            done(undefined, JSON.parse(text) as T);
          } catch {
            done(new GatewayError(`POST ${path}: etcd's answer is not JSON: ${text.slice(0, 200)}`, "refused"));
          }
        }, done);
      });
      req.on("error", done);
      req.end(payload);
    });
  }
}

function bodyOf(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    res.setEncoding("utf8");
    res.on("data", (c: string) => (text += c));
    res.on("end", () => resolve(text));
    res.on("error", reject);
    res.on("close", () => (res.complete ? undefined : reject(new Error("the connection closed before the answer was complete"))));
  });
}

/** Call onLine with each complete line of a streamed body (etcd ends each watch message with "\n"). */
function readLines(res: IncomingMessage, onLine: (line: string) => void): void {
  let pending = "";
  res.setEncoding("utf8");
  res.on("data", (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line) onLine(line);
    }
  });
}
