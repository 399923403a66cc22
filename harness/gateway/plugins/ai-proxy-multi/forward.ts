import { headerOf, jsonResponse, type GatewayRequest, type GatewayResponse } from "../../http-types.ts";
import type { LogWriter } from "../../healthcheck/library.ts";
import type { Transport } from "../../net/transport.ts";
import { getProvider } from "../../providers/providers.ts";
import { parseEndpointAsUrl } from "./endpoint.ts";
import type { DnsNode, Instance } from "./types.ts";

/** Which instance served a request, for observations. */
export const INSTANCE_HEADER = "x-harness-instance";

export interface ForwardEnv {
  transport: Transport;
  log: LogWriter;
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
    env.log.write("error", { file: "plugins/ai-proxy/base.lua", line: 120, fn: "before_proxy" }, `failed to send request to LLM service: ${(e as Error).message}`, "client");
    return { ...jsonResponse(502, { error_msg: `failed to send request to LLM service: ${(e as Error).message}` }), headers: { "content-type": "application/json", [INSTANCE_HEADER]: instance.name } };
  }
}
