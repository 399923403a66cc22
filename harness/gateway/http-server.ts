import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { GatewayRequest, GatewayResponse } from "./http-types.ts";

export type Handler = (req: GatewayRequest) => Promise<GatewayResponse> | GatewayResponse;

export interface ListenOptions {
  /** Answer from the request line and headers alone (e.g. a missing key): the body is then not read. */
  precheck?: (head: Omit<GatewayRequest, "body">) => GatewayResponse | undefined;
  /** Read at most `bytes` of body; a longer one is answered with `answer(size)` and not kept. */
  maxBody?: { bytes: number; answer: (size: number) => GatewayResponse };
}

/** How long a refused request's remaining body is read and dropped before the connection is cut. */
const LINGER_MS = 5000;

function head(req: IncomingMessage): Omit<GatewayRequest, "body"> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
  return { method: req.method ?? "GET", path: req.url ?? "/", headers };
}

/** The body, or the size at which it went over the limit (the stream is left open to be drained). */
function readBody(req: IncomingMessage, max: number): Promise<{ body: string } | { tooLarge: number }> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > max) return Promise.resolve({ tooLarge: declared });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > max) {
        req.off("data", onData).off("end", onEnd).off("error", reject);
        chunks.length = 0;
        resolve({ tooLarge: size });
      } else chunks.push(c);
    };
    const onEnd = (): void => resolve({ body: Buffer.concat(chunks).toString() });
    req.on("data", onData).once("end", onEnd).once("error", reject);
  });
}

function send(res: ServerResponse, r: GatewayResponse): void {
  res.writeHead(r.status, r.headers);
  res.end(r.body);
}

/**
 * Answer without keeping the body: what is left of it is read and dropped (nginx discards an
 * unread body the same way), so the client, still sending, gets the answer rather than a reset.
 * A body that has not ended LINGER_MS later has its connection cut.
 */
function refuse(req: IncomingMessage, res: ServerResponse, r: GatewayResponse): void {
  send(res, r);
  const cut = setTimeout(() => req.socket.destroy(), LINGER_MS);
  cut.unref();
  req.once("end", () => clearTimeout(cut));
  req.once("close", () => clearTimeout(cut));
  req.resume();
}

/** An HTTP server on 127.0.0.1 in front of a handler (port 0 picks a free one). */
export async function listen(handler: Handler, port: number, opts: ListenOptions = {}): Promise<{ server: Server; port: number }> {
  const fail = (res: ServerResponse, e: unknown): void => send(res, { status: 500, headers: { "content-type": "application/json" }, body: JSON.stringify({ error_msg: (e as Error).message }) });
  const server = createServer((req, res) => {
    const h = head(req);
    const early = opts.precheck?.(h);
    if (early) return refuse(req, res, early);
    readBody(req, opts.maxBody?.bytes ?? Infinity)
      .then((read) => {
        if ("tooLarge" in read) return refuse(req, res, opts.maxBody!.answer(read.tooLarge));
        return Promise.resolve(handler({ ...h, body: read.body })).then((r) => send(res, r));
      })
      .catch((e: unknown) => fail(res, e));
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
