import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mergePatch } from "../../harness/gateway/admin/admin-api.ts";
import type { InprocTarget } from "../../harness/targets/inproc.ts";
import { fixtureText, inproc } from "../helpers/inproc.ts";

let t: InprocTarget;
beforeEach(async () => {
  t = await inproc("3.16.0");
});
afterEach(async () => {
  await t.close();
});

const ROUTE = fixtureText("13101/route.json");
const KEY = "edd1c9f034335f136f87ad84b625c8f1";

function errorMsg(body: string): string {
  return (JSON.parse(body) as { error_msg: string }).error_msg;
}

describe("Admin API errors", () => {
  it("401 without a key and with a wrong key", async () => {
    const none = await t.gateway.handleAdmin({ method: "PUT", path: "/apisix/admin/routes/1", headers: {}, body: ROUTE });
    const wrong = await t.gateway.handleAdmin({ method: "PUT", path: "/apisix/admin/routes/1", headers: { "X-API-KEY": "nope" }, body: ROUTE });
    expect([none.status, wrong.status]).toEqual([401, 401]);
    expect(errorMsg(none.body)).toBe("failed to check token");
    expect(await t.store.get("/apisix/routes/1")).toBeUndefined();
  });

  it("the key header is case-insensitive, as HTTP headers are", async () => {
    const res = await t.gateway.handleAdmin({ method: "PUT", path: "/apisix/admin/routes/1", headers: { "X-Api-Key": KEY }, body: ROUTE });
    expect(res.status).toBe(201);
  });

  it("400 for bad JSON, naming the parse error", async () => {
    const res = await t.admin("PUT", "/apisix/admin/routes/1", '{"uri": "/ai/*",');
    expect(res.status).toBe(400);
    expect(errorMsg(res.body)).toMatch(/^invalid request body: .*JSON/);
  });

  it("400 for a schema violation, naming the property as APISIX's jsonschema does", async () => {
    const body = JSON.parse(ROUTE) as { plugins: { "ai-proxy-multi": { instances: Record<string, unknown>[] } } };
    delete body.plugins["ai-proxy-multi"].instances[1]!.weight;
    const res = await t.admin("PUT", "/apisix/admin/routes/1", JSON.stringify(body));
    expect(res.status).toBe(400);
    expect(errorMsg(res.body)).toBe(`failed to check the configuration of plugin ai-proxy-multi err: property "instances" validation failed: failed to validate item 2: property "weight" is required`);
  });

  it("400 for an unknown provider, in the words t/plugin/ai-proxy-multi.t TEST 2 matches", async () => {
    const res = await t.admin("PUT", "/apisix/admin/routes/1", ROUTE.replace('"provider": "openai"', '"provider": "llama"'));
    expect(res.status).toBe(400);
    expect(errorMsg(res.body)).toBe('failed to check the configuration of plugin ai-proxy-multi err: property "instances" validation failed: failed to validate item 1: property "provider" validation failed: matches none of the enum values');
  });

  it("400 for an unknown route property and for a route without uri", async () => {
    const extra = await t.admin("PUT", "/apisix/admin/routes/1", JSON.stringify({ ...JSON.parse(ROUTE), colour: "blue" }));
    expect(errorMsg(extra.body)).toBe("invalid configuration: additional properties forbidden, found colour");
    const { uri: _uri, ...noUri } = JSON.parse(ROUTE) as Record<string, unknown>;
    const missing = await t.admin("PUT", "/apisix/admin/routes/1", JSON.stringify(noUri));
    expect(missing.status).toBe(400);
  });

  it("404 for GET, PATCH and DELETE of an unknown id", async () => {
    for (const method of ["GET", "PATCH", "DELETE"]) {
      const res = await t.admin(method, "/apisix/admin/routes/404", method === "PATCH" ? '{"desc":"x"}' : "");
      expect(res.status, method).toBe(404);
    }
  });

  it("the bug report's body is accepted as it is, unknown instance property included", async () => {
    const res = await t.admin("PUT", "/apisix/admin/routes/1", ROUTE);
    expect(res.status).toBe(201);
    const stored = JSON.parse((await t.store.get("/apisix/routes/1"))!.value) as { plugins: { "ai-proxy-multi": { instances: { endpoint?: string }[] } } };
    expect(stored.plugins["ai-proxy-multi"].instances[0]!.endpoint).toBe("http://<healthy-host>:80/v1");
  });

  it("3.15/3.16 read an IPv6 endpoint with their pattern and accept it; a non-http endpoint is refused", async () => {
    const body = (endpoint: string) => ROUTE.replace('"endpoint": "http://<healthy-host>:80/v1"', `"override": {"endpoint": "${endpoint}"}`);
    expect((await t.admin("PUT", "/apisix/admin/routes/1", body("http://[::1]:8080/v1"))).status).toBe(201);
    const res = await t.admin("PUT", "/apisix/admin/routes/2", body("ftp://x/v1"));
    expect(res.status).toBe(400);
    expect(errorMsg(res.body)).toBe("failed to check the configuration of plugin ai-proxy-multi err: invalid endpoint");
  });
});

/** Every claim below is checked against apisix/admin/init.lua@3.15.0 (same in 3.16.0-3.18.0). */
describe("Admin API as APISIX reads a request", () => {
  const raw = (path: string, headers: Record<string, string>, body = ROUTE, method = "PUT") => t.gateway.handleAdmin({ method, path, headers, body });

  it("takes the key from ?api_key=, the X-API-KEY header or the x_api_key cookie, the query first (:84-85, core/ctx.lua:294-313)", async () => {
    expect((await raw("/apisix/admin/routes/1?api_key=" + KEY, {})).status).toBe(201);
    expect((await raw("/apisix/admin/routes/2", { cookie: `lang=en; x_api_key=${KEY}` })).status).toBe(201);
    const wrongQuery = await raw("/apisix/admin/routes/3?api_key=nope", { "x-api-key": KEY });
    expect(wrongQuery.status).toBe(401);
    expect(JSON.parse(wrongQuery.body)).toEqual({ error_msg: "failed to check token", description: "wrong apikey" });
    // The cookie is looked up by its exact name, as lua-resty-cookie does.
    expect((await raw("/apisix/admin/routes/4", { cookie: `X-API-KEY=${KEY}` })).status).toBe(401);
  });

  it("reads at most 1.5 MiB of body, and only after the key was checked (:40, :205-208, core/request.lua:258-262)", async () => {
    const big = JSON.stringify({ ...JSON.parse(ROUTE), desc: "x".repeat(2 * 1024 * 1024) });
    const noKey = await raw("/apisix/admin/routes/1", {}, big);
    expect(noKey.status).toBe(401);
    const tooBig = await raw("/apisix/admin/routes/1", { "x-api-key": KEY }, big);
    expect(tooBig.status).toBe(400);
    expect(errorMsg(tooBig.body)).toBe(`invalid request body: request size ${Buffer.byteLength(big)} is greater than the maximum size 1572864 allowed`);
    // Under the limit the body is read and judged on its content (here: desc is too long for the schema).
    const justUnder = JSON.stringify({ ...JSON.parse(ROUTE), desc: "x".repeat(1024 * 1024) });
    expect(errorMsg((await raw("/apisix/admin/routes/1", { "x-api-key": KEY }, justUnder)).body)).toMatch(/^invalid configuration: property "desc" validation failed/);
  });

  it("400 for a body nested deeper than cjson decodes (1000 levels), with cjson's message (:211-217)", async () => {
    const deep = "[".repeat(8000) + "]".repeat(8000);
    const res = await raw("/apisix/admin/routes/1", { "x-api-key": KEY }, deep);
    expect(res.status).toBe(400);
    expect(errorMsg(res.body)).toBe("invalid request body: Found too many nested data structures (1001) at character 1001");
    const objects = '{"a":'.repeat(1001) + "1" + "}".repeat(1001);
    expect(errorMsg((await raw("/apisix/admin/routes/1", { "x-api-key": KEY }, objects)).body)).toBe("invalid request body: Found too many nested data structures (1001) at character 5001");
    // A short text can only nest that deep when it is not valid JSON: still cjson's depth message, not the parse error.
    expect(errorMsg((await raw("/apisix/admin/routes/1", { "x-api-key": KEY }, "[".repeat(1500))).body)).toBe("invalid request body: Found too many nested data structures (1001) at character 1001");
    expect(errorMsg((await raw("/apisix/admin/routes/1", { "x-api-key": KEY }, "[".repeat(1000))).body)).toMatch(/^invalid request body: (?!Found too many)/);
    // Brackets inside strings do not count.
    const inString = JSON.stringify({ ...JSON.parse(ROUTE), desc: "[{".repeat(100) });
    expect((await raw("/apisix/admin/routes/1", { "x-api-key": KEY }, inString)).status).toBe(201);
  });

  it("503 only when the store fails, naming it; 500 for a fault of the gateway itself", async () => {
    const broken = await inproc("3.18.0");
    await broken.store.close();
    const down = await broken.gateway.handleAdmin({ method: "PUT", path: "/apisix/admin/routes/1", headers: { "x-api-key": KEY }, body: ROUTE });
    expect(down.status).toBe(503);
    expect(errorMsg(down.body)).toMatch(/store is closed/);
    await broken.close();
    t.gateway.admin.check = () => {
      throw new TypeError("cannot read properties of undefined");
    };
    const bug = await t.admin("PUT", "/apisix/admin/routes/1", ROUTE);
    expect(bug.status).toBe(500);
    expect(errorMsg(bug.body)).toContain("cannot read properties of undefined");
  });

  it("resolves dot segments as nginx does before routing: nothing outside /apisix/admin/ is taken for a route", async () => {
    const outside = await raw("/apisix/admin/routes/../../x", { "x-api-key": KEY }, "", "GET");
    expect([outside.status, errorMsg(outside.body)]).toEqual([404, "not found"]);
    expect((await raw("/apisix/admin/routes/../routes/7", { "x-api-key": KEY })).status).toBe(201);
    expect((await t.store.get("/apisix/routes/7"))).toBeDefined();
    expect((await raw("/apisix/admin/../../../etc/passwd", { "x-api-key": KEY }, "", "GET")).status).toBe(400);
    const services = await raw("/apisix/admin/services/1", { "x-api-key": KEY }, "", "GET");
    expect([services.status, errorMsg(services.body)]).toEqual([404, "Unsupported resource type: services"]);
  });

  it("404 not found for a method the resource does not have (:199-202)", async () => {
    const res = await raw("/apisix/admin/routes/1", { "x-api-key": KEY }, "", "OPTIONS");
    expect([res.status, errorMsg(res.body)]).toEqual([404, "not found"]);
  });
});

describe("PATCH merge and revisions", () => {
  it("objects merge key by key; null deletes; arrays, other values and empty objects replace (core.table.merge)", () => {
    expect(mergePatch({ a: { b: 1, c: [1, 2] }, d: "x", f: {}, g: 1 }, { a: { c: [3] }, d: null, e: 2, f: { h: 1 } })).toEqual({ a: { b: 1, c: [3] }, e: 2, f: { h: 1 }, g: 1 });
  });

  it("PUT and PATCH answer {key, value} as APISIX does; PATCH keeps the rest and bumps the revision by one", async () => {
    const putRes = await t.admin("PUT", "/apisix/admin/routes/1", ROUTE);
    const put = JSON.parse(putRes.body) as Record<string, unknown>;
    expect(Object.keys(put).sort()).toEqual(["key", "value"]);
    expect(put.key).toBe("/apisix/routes/1");
    const patchRes = await t.admin("PATCH", "/apisix/admin/routes/1", '{"desc": "trigger config refresh"}');
    const patch = JSON.parse(patchRes.body) as { key: string; value: Record<string, unknown> };
    expect(Object.keys(patch).sort()).toEqual(["key", "value"]);
    expect(patchRes.revision).toBe(putRes.revision! + 1);
    expect(patch.value.desc).toBe("trigger config refresh");
    expect(patch.value.uri).toBe("/ai/*");
    const got = JSON.parse((await t.admin("GET", "/apisix/admin/routes/1")).body) as { modifiedIndex: number; createdIndex: number; value: { plugins: { "ai-proxy-multi": { instances: unknown[] } } } };
    expect(got.modifiedIndex).toBe(patchRes.revision);
    expect(got.createdIndex).toBe(putRes.revision);
    expect(got.value.plugins["ai-proxy-multi"].instances).toHaveLength(2);
  });

  it("a PATCH with null removes a key, and a PATCH of a sub-path sets just that part", async () => {
    await t.admin("PUT", "/apisix/admin/routes/1", ROUTE.replace('"uri"', '"desc": "first", "uri"'));
    const cleared = await t.admin("PATCH", "/apisix/admin/routes/1", '{"desc": null}');
    expect(cleared.status).toBe(200);
    expect((JSON.parse(cleared.body) as { value: Record<string, unknown> }).value).not.toHaveProperty("desc");
    const sub = await t.admin("PATCH", "/apisix/admin/routes/1/desc", '"set through a sub-path"');
    expect(sub.status).toBe(200);
    expect((JSON.parse(sub.body) as { value: Record<string, unknown> }).value.desc).toBe("set through a sub-path");
    const bad = await t.admin("PATCH", "/apisix/admin/routes/1/uri/x", '"no"');
    expect([bad.status, JSON.parse(bad.body)]).toEqual([400, { error_msg: "invalid sub-path: /uri" }]);
  });

  it("every write gives the config cache a new object carrying the new modifiedIndex", async () => {
    await t.admin("PUT", "/apisix/admin/routes/1", ROUTE);
    const first = t.gateway.config.getRoute("1")!;
    (first.value as Record<string, unknown>)._marker = true;
    await t.admin("PATCH", "/apisix/admin/routes/1", '{"desc":"x"}');
    const second = t.gateway.config.getRoute("1")!;
    expect(second).not.toBe(first);
    expect(second.value._marker).toBeUndefined();
    expect(second.modifiedIndex).toBe(first.modifiedIndex + 1);
  });

  it("PATCH that breaks the schema is refused and leaves the stored route alone", async () => {
    await t.admin("PUT", "/apisix/admin/routes/1", ROUTE);
    const before = await t.store.get("/apisix/routes/1");
    const res = await t.admin("PATCH", "/apisix/admin/routes/1", '{"plugins": {"ai-proxy-multi": {"instances": []}}}');
    expect(res.status).toBe(400);
    expect((await t.store.get("/apisix/routes/1"))!.modRevision).toBe(before!.modRevision);
  });
});
