import type { Clock } from "../clock/clock.ts";
import type { KeyValue, Store } from "../config/store.ts";
import { headerOf, jsonResponse, type GatewayRequest, type GatewayResponse } from "../http-types.ts";
import type { PluginCheck } from "../engine.ts";
import { describeSchemaError } from "./schema-errors.ts";
import { adminValidators } from "./validators.ts";

export const DEFAULT_ADMIN_KEY = "edd1c9f034335f136f87ad84b625c8f1";

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** PATCH semantics: objects merge key by key, every other value (arrays too) replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  return mergeInto(structuredClone(target), structuredClone(patch));
}

/** Merges an owned copy of the patch into an owned copy of the target (no further cloning). */
function mergeInto(target: unknown, patch: unknown): unknown {
  if (!isObject(target) || !isObject(patch)) return patch;
  for (const [k, v] of Object.entries(patch)) target[k] = k in target ? mergeInto(target[k], v) : v;
  return target;
}

export interface AdminOptions {
  store: Store;
  prefix: string;
  clock: Clock;
  apiKey?: string;
  /** The engine's check of a plugin conf (the real check_schema on the lua engine). */
  checkPlugin(name: string, conf: unknown): Promise<PluginCheck>;
}

/**
 * The Admin API for routes: PUT/POST/PATCH/GET/DELETE under /apisix/admin/routes, key in
 * X-API-KEY, schema checked (defaults filled in, as APISIX stores them), written to the store.
 */
export class AdminApi {
  private nextId = 1;
  /**
   * The text this API last stored under each key and its create_time: a PUT over a route this API
   * wrote reads create_time from here instead of parsing the stored route again. The stored text is
   * compared first, so a route another writer changed is still parsed.
   */
  private readonly written = new Map<string, { text: string; createTime: number }>();

  constructor(private readonly opts: AdminOptions) {}

  private key(id: string): string {
    return `${this.opts.prefix}/routes/${id}`;
  }

  async handle(req: GatewayRequest): Promise<GatewayResponse> {
    const apiKey = headerOf(req, "x-api-key");
    if (apiKey !== (this.opts.apiKey ?? DEFAULT_ADMIN_KEY)) {
      return jsonResponse(401, { error_msg: "failed to check token", description: apiKey ? "wrong apikey" : "missing apikey" });
    }
    const path = req.path.split("?")[0]!.replace(/\/+$/, "");
    const m = /^\/apisix\/admin\/routes(?:\/([^/]+))?$/.exec(path);
    if (!m) return jsonResponse(404, { error_msg: `Unsupported resource type: ${path.split("/")[3] ?? ""}` });
    const id = m[1];
    const method = req.method.toUpperCase();
    try {
      if (method === "GET") return id ? await this.get(id) : await this.list();
      if (method === "DELETE" && id) return await this.remove(id);
      if (method === "PUT") return await this.put(id, req.body);
      if (method === "POST" && !id) return await this.put(undefined, req.body, true);
      if (method === "PATCH" && id) return await this.patch(id, req.body);
    } catch (e) {
      return jsonResponse(503, { error_msg: `store unavailable: ${(e as Error).message}` });
    }
    return jsonResponse(405, { error_msg: `method ${method} not allowed on ${path}` });
  }

  private parseBody(body: string): { value?: Json; error?: GatewayResponse } {
    if (body.trim() === "") return { error: jsonResponse(400, { error_msg: "invalid request body: empty request body" }) };
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (e) {
      return { error: jsonResponse(400, { error_msg: `invalid request body: ${(e as Error).message}` }) };
    }
    if (!isObject(value)) return { error: jsonResponse(400, { error_msg: "invalid request body: expected a JSON object" }) };
    return { value };
  }

  /** Validate a whole route, filling defaults (the plugins' too); returns the error message or undefined. */
  async check(route: Json): Promise<string | undefined> {
    const validateRoute = adminValidators().route;
    if (!validateRoute(route)) return `invalid configuration: ${describeSchemaError(validateRoute.errors)}`;
    const plugins = (route.plugins ?? {}) as Json;
    for (const [name, conf] of Object.entries(plugins)) {
      const checked = await this.opts.checkPlugin(name, conf);
      if (!checked.ok) return checked.error;
      plugins[name] = checked.conf;
    }
    return undefined;
  }

  /** Check and store a route; `existing` is the stored key it replaces (undefined: a new route). */
  private async write(id: string, route: Json, existing: KeyValue | undefined, createTime?: number): Promise<GatewayResponse> {
    const now = Math.floor(this.opts.clock.now() / 1000);
    const value = { ...route, id, create_time: createTime ?? now, update_time: now };
    const err = await this.check(value);
    if (err) return jsonResponse(400, { error_msg: err });
    const text = JSON.stringify(value);
    const revision = await this.opts.store.put(this.key(id), text);
    this.written.set(this.key(id), { text, createTime: value.create_time });
    const createdIndex = existing?.createRevision ?? revision;
    // The stored text is reused for the answer rather than serialising the route twice.
    const body = `{"key":${JSON.stringify(this.key(id))},"value":${text},"modifiedIndex":${revision},"createdIndex":${createdIndex}}`;
    return { status: existing ? 200 : 201, headers: { "content-type": "application/json" }, body, revision };
  }

  private async put(pathId: string | undefined, body: string, generateId = false): Promise<GatewayResponse> {
    const { value, error } = this.parseBody(body);
    if (error) return error;
    const bodyId = value!.id !== undefined ? String(value!.id) : undefined;
    if (pathId && bodyId && bodyId !== pathId) return jsonResponse(400, { error_msg: "wrong route id" });
    let id = pathId ?? bodyId;
    if (!id) {
      if (!generateId) return jsonResponse(400, { error_msg: "missing route id" });
      id = String(Date.now()) + String(this.nextId++).padStart(4, "0");
    }
    const existing = await this.opts.store.get(this.key(id));
    const mine = existing && this.written.get(existing.key);
    const createTime = !existing ? undefined : mine?.text === existing.value ? mine.createTime : (JSON.parse(existing.value) as Json).create_time;
    // The body's own timestamps are dropped (write() appends the real ones at the end).
    let rest = value!;
    if ("create_time" in rest || "update_time" in rest) {
      const { create_time: _c, update_time: _u, ...others } = rest;
      rest = others;
    }
    return this.write(id, rest, existing, typeof createTime === "number" ? createTime : undefined);
  }

  private async patch(id: string, body: string): Promise<GatewayResponse> {
    const { value, error } = this.parseBody(body);
    if (error) return error;
    const existing = await this.opts.store.get(this.key(id));
    if (!existing) return jsonResponse(404, { error_msg: `route ${id} not found` });
    const stored = JSON.parse(existing.value) as Json;
    const createTime = stored.create_time;
    // Both sides were just parsed from JSON and belong to this call: merge in place, no clones.
    const merged = mergeInto(stored, value) as Json;
    if (merged.id !== undefined && String(merged.id) !== id) return jsonResponse(400, { error_msg: "wrong route id" });
    return this.write(id, merged, existing, typeof createTime === "number" ? createTime : undefined);
  }

  private async get(id: string): Promise<GatewayResponse> {
    const kv = await this.opts.store.get(this.key(id));
    if (!kv) return jsonResponse(404, { error_msg: `route ${id} not found` });
    return jsonResponse(200, { key: kv.key, value: JSON.parse(kv.value), modifiedIndex: kv.modRevision, createdIndex: kv.createRevision });
  }

  private async list(): Promise<GatewayResponse> {
    const { kvs } = await this.opts.store.range(`${this.opts.prefix}/routes/`);
    return jsonResponse(200, { total: kvs.length, list: kvs.map((kv) => ({ key: kv.key, value: JSON.parse(kv.value), modifiedIndex: kv.modRevision, createdIndex: kv.createRevision })) });
  }

  private async remove(id: string): Promise<GatewayResponse> {
    const revision = await this.opts.store.delete(this.key(id));
    this.written.delete(this.key(id));
    if (revision === undefined) return jsonResponse(404, { error_msg: `route ${id} not found` });
    return jsonResponse(200, { deleted: "1", key: this.key(id) }, { revision });
  }
}
