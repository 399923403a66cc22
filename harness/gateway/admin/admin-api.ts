import type { Clock } from "../clock/clock.ts";
import { rememberWellFormed } from "../config/known-json.ts";
import { StoreError, type KeyValue, type Store } from "../config/store.ts";
import { headerOf, jsonResponse, type GatewayRequest, type GatewayResponse } from "../http-types.ts";
import type { PluginCheck } from "../engine.ts";
import { describeSchemaError } from "./schema-errors.ts";
import { adminValidators } from "./validators.ts";

export const DEFAULT_ADMIN_KEY = "edd1c9f034335f136f87ad84b625c8f1";

/** The most of a request body the Admin API reads: MAX_REQ_BODY, apisix/admin/init.lua:40@3.15.0. */
export const MAX_REQ_BODY = 1024 * 1024 * 1.5;

/** lua-cjson's default decode_max_depth, which APISIX's core.json.decode (cjson.safe) keeps. */
const MAX_JSON_DEPTH = 1000;

/** Valid JSON nested MAX_JSON_DEPTH + 1 deep has that many brackets opened and closed: no shorter text can be. */
const SHORTEST_TOO_DEEP = 2 * (MAX_JSON_DEPTH + 1);

/** Methods the routes resource has (apisix/admin/resource.lua); others answer 404 "not found". */
const ROUTE_METHODS = new Set(["GET", "PUT", "POST", "DELETE", "PATCH"]);

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * PATCH semantics, core.table.merge (core/table.lua:173-193@3.15.0): an object merges into an
 * object key by key; a JSON null deletes the key; anything else replaces, arrays and an empty
 * object included (merge sees an empty table as an array).
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  return mergeInto(structuredClone(target), structuredClone(patch));
}

/** Merges an owned copy of the patch into an owned copy of the target (no further cloning). */
function mergeInto(target: unknown, patch: unknown): unknown {
  if (!isObject(target) || !isObject(patch)) return patch;
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete target[k];
    else {
      const old = target[k];
      target[k] = isObject(v) && isObject(old) && Object.keys(old).length > 0 ? mergeInto(old, v) : v;
    }
  }
  return target;
}

/**
 * PATCH of a sub-path, core.table.patch (core/table.lua:197-226@3.15.0): walk the segments,
 * creating missing objects, and set the last one to the body; an error names the sub-path that is
 * not an object.
 */
function patchAt(node: Json, subPath: string, value: unknown): { value?: Json; error?: string } {
  const segs = subPath.split("/");
  let sub: unknown = node;
  for (let i = 0; i < segs.length - 1; i++) {
    const cur = sub as Json;
    if (cur[segs[i]!] === undefined) cur[segs[i]!] = {};
    sub = cur[segs[i]!];
    if (!isObject(sub)) return { error: `invalid sub-path: /${segs.slice(0, i + 1).join("/")}` };
  }
  if (!isObject(sub)) return { error: `invalid sub-path: /${subPath}` };
  const last = segs[segs.length - 1]!;
  if (last === "") return isObject(value) ? { value } : { error: "invalid configuration" };
  sub[last] = value;
  return { value: node };
}

/**
 * The first bracket that nests deeper than cjson allows, as cjson reports it ("Found too many
 * nested data structures (1001) at character N"); undefined when the nesting is within bounds.
 * Checked before JSON.parse so a deep body is a 400, as in APISIX, whatever JSON.parse would do.
 */
function tooDeep(text: string): string | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > MAX_JSON_DEPTH) return `Found too many nested data structures (${depth}) at character ${i + 1}`;
    } else if (c === 93 || c === 125) depth--;
  }
  return undefined;
}

const normalized = new Map<string, string | undefined>();

/**
 * A path as nginx's $uri has it: `.` and `..` segments resolved, repeated slashes merged.
 * Remembered: every Admin API call normalizes its path twice, and a run asks for a few paths.
 */
function normalizePath(raw: string): string | undefined {
  if (normalized.has(raw)) return normalized.get(raw);
  const path = resolveSegments(raw);
  if (normalized.size >= 1024) normalized.clear();
  normalized.set(raw, path);
  return path;
}

function resolveSegments(raw: string): string | undefined {
  const out: string[] = [];
  for (const seg of raw.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length === 0) return undefined; // above the root: nginx answers 400
      out.pop();
    } else out.push(seg);
  }
  return "/" + out.join("/") + (raw.endsWith("/") && out.length > 0 ? "/" : "");
}

/** One parameter of a query string, decoded, first of repeats (ngx.req.get_uri_args, as core/ctx.lua:305-313@3.15.0 reads arg_*). */
function queryArg(path: string, name: string): string | undefined {
  const q = path.indexOf("?");
  if (q < 0) return undefined;
  const decode = (x: string): string => {
    try {
      return decodeURIComponent(x.replace(/\+/g, " "));
    } catch {
      return x;
    }
  };
  for (const pair of path.slice(q + 1).split("&")) {
    const eq = pair.indexOf("=");
    if (decode(eq < 0 ? pair : pair.slice(0, eq)) === name) return eq < 0 ? "" : decode(pair.slice(eq + 1));
  }
  return undefined;
}

/** A cookie by exact name (lua-resty-cookie's get, as core/ctx.lua:294-303@3.15.0 reads cookie_*). */
function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** APISIX's answer to a body over MAX_REQ_BODY (core/request.lua:258-262, admin/init.lua:205-208@3.15.0). */
export function bodyTooLarge(size: number): GatewayResponse {
  return jsonResponse(400, { error_msg: `invalid request body: request size ${size} is greater than the maximum size ${MAX_REQ_BODY} allowed` });
}

export interface AdminOptions {
  store: Store;
  /** APISIX's etcd.prefix: the keys its answers name. */
  prefix: string;
  /** Where the keys live in the store (default: prefix). */
  storePrefix?: string;
  clock: Clock;
  apiKey?: string;
  /** The engine's check of a plugin conf (the real check_schema on the lua engine). */
  checkPlugin(name: string, conf: unknown): Promise<PluginCheck>;
}

/**
 * The Admin API for routes: PUT/POST/PATCH/GET/DELETE under /apisix/admin/routes, key in
 * ?api_key=, X-API-KEY or the x_api_key cookie, body up to 1.5 MiB, schema checked (defaults
 * filled in, as APISIX stores them), written to the store.
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

  /** The store key of a route. */
  private key(id: string): string {
    return `${this.opts.storePrefix ?? this.opts.prefix}/routes/${id}`;
  }

  /** The key as APISIX names it in its answers. */
  private shownKey(id: string): string {
    return `${this.opts.prefix}/routes/${id}`;
  }

  /**
   * Everything APISIX decides before it reads the body (apisix/admin/init.lua@3.15.0): the key
   * (:84-85, from ?api_key=, the X-API-KEY header, or the x_api_key cookie, in that order), the
   * resource type (:195-197) and the method (:199-202). A response means: answer it and do not
   * read the body. `serve` calls this before reading a byte of the body.
   */
  precheck(req: Pick<GatewayRequest, "method" | "path" | "headers">): GatewayResponse | undefined {
    const apiKey = queryArg(req.path, "api_key") ?? headerOf(req, "x-api-key") ?? cookie(headerOf(req, "cookie"), "x_api_key");
    if (apiKey !== (this.opts.apiKey ?? DEFAULT_ADMIN_KEY)) {
      return jsonResponse(401, { error_msg: "failed to check token", description: apiKey !== undefined ? "wrong apikey" : "missing apikey" });
    }
    const path = normalizePath(req.path.split("?")[0]!);
    if (path === undefined) return jsonResponse(400, { error_msg: "bad request: the path goes above the root" });
    // Outside /apisix/admin/ the admin router matches nothing (apisix/init.lua:1144-1146@3.15.0).
    if (!path.startsWith("/apisix/admin/")) return jsonResponse(404, { error_msg: "not found" });
    const resource = path.split("/")[3] ?? "";
    if (resource !== "routes") return jsonResponse(404, { error_msg: `Unsupported resource type: ${resource}` });
    if (!ROUTE_METHODS.has(req.method.toUpperCase())) return jsonResponse(404, { error_msg: "not found" });
    return undefined;
  }

  async handle(req: GatewayRequest): Promise<GatewayResponse> {
    const refused = this.precheck(req);
    if (refused) return refused;
    // core.request.get_body(MAX_REQ_BODY) (init.lua:205-208@3.15.0, core/request.lua:258-262).
    const size = Buffer.byteLength(req.body);
    if (size > MAX_REQ_BODY) return bodyTooLarge(size);
    const path = normalizePath(req.path.split("?")[0]!)!.replace(/\/+$/, "");
    const m = /^\/apisix\/admin\/routes(?:\/([^/]+)(?:\/(.+))?)?$/.exec(path);
    if (!m) return jsonResponse(404, { error_msg: "not found" });
    const id = m[1];
    const subPath = m[2];
    const method = req.method.toUpperCase();
    try {
      if (method === "PATCH" && id) return await this.patch(id, req.body, subPath);
      if (subPath !== undefined) return jsonResponse(404, { error_msg: "not found" });
      if (method === "GET") return id ? await this.get(id) : await this.list();
      if (method === "DELETE" && id) return await this.remove(id);
      if (method === "PUT") return await this.put(id, req.body);
      if (method === "POST" && !id) return await this.put(undefined, req.body, true);
    } catch (e) {
      // The store failing is a 503 with its message (apisix/admin/resource.lua:169-172@3.15.0 and
      // every other etcd call there); anything else is a bug of ours: 500, not a store outage.
      if (e instanceof StoreError) return jsonResponse(503, { error_msg: e.message });
      return jsonResponse(500, { error_msg: `internal error in the reference gateway's Admin API: ${(e as Error).message}` });
    }
    return jsonResponse(405, { error_msg: `method ${method} not allowed on ${path}` });
  }

  private parseBody(body: string, anyValue = false): { value?: Json; error?: GatewayResponse } {
    if (body.trim() === "") return { error: jsonResponse(400, { error_msg: "invalid request body: empty request body" }) };
    // An unparsable body is answered 400 with the body echoed (apisix/admin/init.lua:211-217@3.15.0).
    // A body too short to nest deeper than cjson allows when it is valid JSON is parsed first
    // (scanning for the depth was 2% of a lifecycle run); the scan then only picks the message.
    const short = body.length < SHORTEST_TOO_DEEP;
    const deep = short ? undefined : tooDeep(body);
    if (deep) return { error: jsonResponse(400, { error_msg: `invalid request body: ${deep}`, req_body: body }) };
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (e) {
      const why = (short && tooDeep(body)) || (e as Error).message;
      return { error: jsonResponse(400, { error_msg: `invalid request body: ${why}`, req_body: body }) };
    }
    if (!anyValue && !isObject(value)) return { error: jsonResponse(400, { error_msg: "invalid request body: expected a JSON object" }) };
    return { value: value as Json };
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
    rememberWellFormed(this.key(id), text);
    const revision = await this.opts.store.put(this.key(id), text);
    this.written.set(this.key(id), { text, createTime: value.create_time });
    // APISIX answers {key, value} (core/etcd.lua set :455-463@3.15.0, the v3 adapter lifting
    // node); the revision is not in the answer. The stored text is reused for it.
    const body = `{"key":${JSON.stringify(this.shownKey(id))},"value":${text}}`;
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

  private async patch(id: string, body: string, subPath?: string): Promise<GatewayResponse> {
    const { value, error } = this.parseBody(body, subPath !== undefined);
    if (error) return error;
    const existing = await this.opts.store.get(this.key(id));
    if (!existing) return jsonResponse(404, { error_msg: `route ${id} not found` });
    const stored = JSON.parse(existing.value) as Json;
    const createTime = stored.create_time;
    let merged: Json;
    if (subPath !== undefined) {
      const patched = patchAt(stored, subPath, value);
      if (patched.error) return jsonResponse(400, { error_msg: patched.error });
      merged = patched.value!;
    } else {
      // Both sides were just parsed from JSON and belong to this call: merge in place, no clones.
      merged = mergeInto(stored, value) as Json;
    }
    if (merged.id !== undefined && String(merged.id) !== id) return jsonResponse(400, { error_msg: "wrong route id" });
    return this.write(id, merged, existing, typeof createTime === "number" ? createTime : undefined);
  }

  private async get(id: string): Promise<GatewayResponse> {
    const kv = await this.opts.store.get(this.key(id));
    if (!kv) return jsonResponse(404, { error_msg: `route ${id} not found` });
    return jsonResponse(200, { key: this.shownKey(id), value: JSON.parse(kv.value), modifiedIndex: kv.modRevision, createdIndex: kv.createRevision });
  }

  private async list(): Promise<GatewayResponse> {
    const base = this.key("");
    const { kvs } = await this.opts.store.range(base);
    return jsonResponse(200, { total: kvs.length, list: kvs.map((kv) => ({ key: this.shownKey(kv.key.slice(base.length)), value: JSON.parse(kv.value), modifiedIndex: kv.modRevision, createdIndex: kv.createRevision })) });
  }

  private async remove(id: string): Promise<GatewayResponse> {
    const revision = await this.opts.store.delete(this.key(id));
    this.written.delete(this.key(id));
    if (revision === undefined) return jsonResponse(404, { error_msg: `route ${id} not found` });
    return jsonResponse(200, { deleted: "1", key: this.shownKey(id) }, { revision });
  }
}
