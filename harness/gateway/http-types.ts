/** A transport-neutral HTTP exchange: the in-process target calls handlers with these directly. */
export interface GatewayRequest {
  method: string;
  /** Path with query string. */
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface GatewayResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Admin writes: the store revision the write produced (the caller may wait for the cache). */
  revision?: number;
}

export function jsonResponse(status: number, value: unknown, extra: Partial<GatewayResponse> = {}): GatewayResponse {
  return { status, headers: { "content-type": "application/json" }, body: JSON.stringify(value), ...extra };
}

/** The first header (in the object's order) whose name is `name` in any case. */
export function headerOf(req: Pick<GatewayRequest, "headers">, name: string): string | undefined {
  const lower = name.toLowerCase();
  const headers = req.headers;
  // for-in over own keys: the same order as Object.entries, without building the pairs.
  for (const k in headers) if (Object.hasOwn(headers, k) && (k === lower || k.toLowerCase() === lower)) return headers[k];
  return undefined;
}
