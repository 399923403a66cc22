import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { GatewayRequest, GatewayResponse } from "./http-types.ts";

export type Handler = (req: GatewayRequest) => Promise<GatewayResponse> | GatewayResponse;

async function readRequest(req: IncomingMessage): Promise<GatewayRequest> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
  return { method: req.method ?? "GET", path: req.url ?? "/", headers, body: Buffer.concat(chunks).toString() };
}

function send(res: ServerResponse, r: GatewayResponse): void {
  res.writeHead(r.status, r.headers);
  res.end(r.body);
}

/** An HTTP server on 127.0.0.1 in front of a handler (port 0 picks a free one). */
export async function listen(handler: Handler, port: number): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    readRequest(req)
      .then((r) => handler(r))
      .then((r) => send(res, r))
      .catch((e: unknown) => send(res, { status: 500, headers: { "content-type": "application/json" }, body: JSON.stringify({ error_msg: (e as Error).message }) }));
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
