import { afterEach, describe, expect, it } from "vitest";
import type { BackendSpec } from "../../harness/backends/backend.ts";
import { INSTANCE_HEADER } from "../../harness/gateway/plugins/ai-proxy-multi/plugin.ts";
import type { InprocTarget } from "../../harness/targets/inproc.ts";
import { CHAT, inproc } from "../helpers/inproc.ts";

let t: InprocTarget | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const checks = { active: { type: "http", http_path: "/health", healthy: { interval: 1, successes: 1 }, unhealthy: { interval: 1, http_failures: 1, tcp_failures: 1 } } };

function instance(name: string, endpoint: string, weight = 1, extra: Record<string, unknown> = {}) {
  return { name, provider: "openai-compatible", weight, auth: { header: { Authorization: `Bearer ${name}` } }, override: { endpoint }, checks, ...extra };
}

function route(instances: unknown[]): string {
  return JSON.stringify({ uri: "/ai/*", plugins: { "ai-proxy-multi": { instances } } });
}

const AB: BackendSpec[] = [
  { name: "a", hosts: ["a.test"], mode: { kind: "healthy" } },
  { name: "b", hosts: ["b.test"], mode: { kind: "healthy" } },
];

async function answers(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await t!.request("POST", "/ai/chat/completions", {}, CHAT)).headers[INSTANCE_HEADER] ?? "none");
  return out;
}

describe("data plane: routing, picking, forwarding (real loopback backends)", () => {
  it("404 without a matching route, 400 without messages", async () => {
    t = await inproc("3.16.0", AB, "loopback");
    expect((await t.request("POST", "/nothing", {}, CHAT)).status).toBe(404);
    await t.admin("PUT", "/apisix/admin/routes/1", route([instance("a", "http://a.test/v1/chat/completions"), instance("b", "http://b.test/v1/chat/completions")]));
    const bad = await t.request("POST", "/ai/chat/completions", {}, '{"model":"x"}');
    expect(bad.status).toBe(400);
  });

  it("weights decide the share of requests (3:1)", async () => {
    t = await inproc("3.16.0", AB, "loopback");
    await t.admin("PUT", "/apisix/admin/routes/1", route([instance("a", "http://a.test/v1/chat/completions", 3), instance("b", "http://b.test/v1/chat/completions", 1)]));
    const got = await answers(8);
    expect(got.filter((x) => x === "a")).toHaveLength(6);
    expect(got.filter((x) => x === "b")).toHaveLength(2);
    expect(t.backends.get("a").chatRequests).toBe(6);
  });

  it("an instance whose checker says unhealthy is skipped; when all are unhealthy all are used", async () => {
    t = await inproc("3.16.0", AB, "loopback");
    await t.admin("PUT", "/apisix/admin/routes/1", route([instance("a", "http://a.test/v1/chat/completions"), instance("b", "http://b.test/v1/chat/completions")]));
    await answers(1);
    await t.wait(1500);
    await t.setBackend("b", { kind: "status", status: 500 });
    await t.wait(1000);
    expect(await answers(4)).toEqual(["a", "a", "a", "a"]);
    await t.setBackend("a", { kind: "status", status: 503 });
    await t.wait(1000);
    const all = await answers(4);
    expect(all.sort()).toEqual(["a", "a", "b", "b"]);
    expect((await t.checkers()).flatMap((c) => c.nodes.map((n) => n.status))).toEqual(["unhealthy", "unhealthy"]);
  });

  it("forwards to the provider's path with the instance's auth, and answers with the provider's body", async () => {
    t = await inproc("3.16.0", [
      { name: "openai", hosts: ["api.openai.com"], mode: { kind: "healthy" } },
      { name: "deepseek", hosts: ["api.deepseek.com"], mode: { kind: "healthy" } },
      { name: "vertex", hosts: ["europe-west4-aiplatform.googleapis.com"], mode: { kind: "healthy" } },
      { name: "own", hosts: ["own.test"], mode: { kind: "healthy" } },
    ], "loopback");
    const one = (ins: Record<string, unknown>) => JSON.stringify({ uri: "/ai/*", plugins: { "ai-proxy-multi": { instances: [ins] } } });
    const cases: [Record<string, unknown>, string, string][] = [
      [{ name: "o", provider: "openai", weight: 1, auth: { header: { Authorization: "Bearer o" } } }, "openai", "/v1/chat/completions"],
      [{ name: "d", provider: "deepseek", weight: 1, auth: { header: { Authorization: "Bearer d" } } }, "deepseek", "/chat/completions"],
      [{ name: "v", provider: "vertex-ai", weight: 1, auth: { header: { Authorization: "Bearer v" } }, provider_conf: { project_id: "p1", region: "europe-west4" } }, "vertex", "/v1/projects/p1/locations/europe-west4/endpoints/openapi/chat/completions"],
      [{ name: "c", provider: "openai-compatible", weight: 1, auth: { header: { Authorization: "Bearer c" }, query: { key: "k" } }, override: { endpoint: "http://own.test:8080/custom/chat/completions?x=1" } }, "own", "/custom/chat/completions?x=1&key=k"],
    ];
    for (const [ins, backend, path] of cases) {
      await t.admin("PUT", "/apisix/admin/routes/1", one(ins));
      const res = await t.request("POST", "/ai/chat/completions", { "content-type": "application/json" }, CHAT);
      expect(res.status, backend).toBe(200);
      expect(JSON.parse(res.body).choices[0].message.content).toBe(`hello from ${backend}`);
      const last = t.backends.get(backend).lastChat!;
      expect(last.path).toBe(path);
      expect(last.headers.authorization).toBe(`Bearer ${ins.name as string}`);
    }
  });

  it("a backend that refuses connections: the release's driver logs it (its file and line) and answers 500; a timeout 504", async () => {
    const ctx = 'client: 127.0.0.1, server: , request: "POST /ai/chat/completions HTTP/1.1", host: "127.0.0.1"';
    for (const [version, level, where, prefix] of [
      ["3.15.0", "error", "openai-base.lua:340", "failed to connect to LLM server: "],
      ["3.16.0", "error", "openai-base.lua:366", "failed to connect to LLM server: "],
      ["3.17.0", "warn", "base.lua:226", "failed to send request to LLM server: connect: "],
      ["3.18.0", "warn", "base.lua:344", "failed to send request to LLM server: connect: "],
    ] as const) {
      const target = await inproc(version, [{ name: "a", hosts: ["a.test"], mode: { kind: "down" } }], "simulated");
      try {
        await target.admin("PUT", "/apisix/admin/routes/1", route([instance("a", "http://a.test/v1/chat/completions")]));
        expect((await target.request("POST", "/ai/chat/completions", {}, CHAT)).status).toBe(500);
        await target.setBackend("a", { kind: "slow", delayMs: 10_000 });
        expect((await target.request("POST", "/ai/chat/completions", {}, CHAT)).status).toBe(504);
        const lines = (await target.logLines()).map((l) => l.text.replace(/^\S+ \S+ /, "").replace(/ \d+#\d+: \*\d+ /, " "));
        expect(lines).toEqual([`[${level}] [lua] ${where}: ${prefix}connection refused, ${ctx}`, `[${level}] [lua] ${where}: ${prefix}timeout, ${ctx}`]);
      } finally {
        await target.close();
      }
    }
  });
});
