import { headerOf, jsonResponse, type GatewayRequest, type GatewayResponse } from "../../http-types.ts";
import type { LogWriter } from "../../healthcheck/library.ts";
import type { Transport } from "../../net/transport.ts";
import { getProvider } from "../../providers/providers.ts";
import { parseEndpointAsUrl } from "./endpoint.ts";
import type { ProxyBehaviour } from "./behaviour.ts";
import type { DnsNode, Instance } from "./types.ts";

/** Which instance served a request, for observations. */
export const INSTANCE_HEADER = "x-harness-instance";

export interface ForwardEnv {
  transport: Transport;
  log: LogWriter;
  /** The release's driver: how it logs a failed connection. */
  proxy: ProxyBehaviour;
  /** The request's log suffix. */
  context: string;
}

/** How ngx_lua ends a log line written while it serves a request. */
export function requestContext(req: GatewayRequest): string {
  const uri = req.path.split("?")[0];
  return `client: 127.0.0.1, server: , request: "${req.method} ${uri} HTTP/1.1", host: "${headerOf(req, "host") ?? "127.0.0.1"}"`;
}

/** ngx_lua's cosocket words for what the transport saw. */
function socketError(e: Error): string {
  return /timed? ?out/i.test(e.message) ? "timeout" : "connection refused";
}

/**
 * Send the chat request to the picked instance's node: the endpoint's path (or the provider's
 * chat path), its query plus `auth.query`, and `auth.header`. Both engines proxy this way.
 */
export async function forwardToInstance(instance: Instance, node: DnsNode, req: GatewayRequest, env: ForwardEnv): Promise<GatewayResponse> {
  const endpoint = instance.override?.endpoint ? parseEndpointAsUrl(instance.override.endpoint) : undefined;
  let path = endpoint?.path && endpoint.path !== "/" ? endpoint.path : getProvider(instance.provider).chatPath(instance);
  const query = new URLSearchParams(endpoint?.query ?? "");
  for (const [k, v] of Object.entries(instance.auth?.query ?? {})) query.set(k, v);
  if ([...query].length > 0) path += `?${query.toString()}`;
  const headers: Record<string, string> = { "content-type": headerOf(req, "content-type") ?? "application/json", host: node.domain ?? node.host };
  for (const [k, v] of Object.entries(instance.auth?.header ?? {})) headers[k.toLowerCase()] = v;
  try {
    const res = await env.transport.forward({ ip: node.host, port: node.port, scheme: node.scheme, method: "POST", path, headers, body: req.body, timeoutMs: 5000 });
    return { status: res.status, headers: { ...res.headers, [INSTANCE_HEADER]: instance.name }, body: res.body };
  } catch (e) {
    // The driver's handle_error: 504 for a timeout, 500 for anything else.
    const err = socketError(e as Error);
    const site = env.proxy.connectFailed;
    env.log.write(site.level, site, `${site.prefix}${err}`, env.context);
    return { ...jsonResponse(err === "timeout" ? 504 : 500, { error_msg: `${site.prefix}${err}` }), headers: { "content-type": "application/json", [INSTANCE_HEADER]: instance.name } };
  }
}
