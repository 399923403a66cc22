import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LoopbackBackends, SimulatedBackends } from "../../harness/backends/pool.ts";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { Resolver } from "../../harness/gateway/resolver/resolver.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { jsonCheckProblem, runJsonChecks } from "../../harness/runner/json-checks.ts";
import { loadScenario } from "../../harness/runner/load.ts";
import { runSuite } from "../../harness/runner/suite.ts";
import { HttpTarget } from "../../harness/targets/http-target.ts";
import { InprocFactory } from "../../harness/targets/inproc.ts";
import { TargetUnsupported } from "../../harness/targets/target.ts";

const dir = mkdtempSync(join(tmpdir(), "harness-steps-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function runText(name: string, text: string, versions = ["3.18.0"]) {
  const file = join(dir, name);
  writeFileSync(file, text);
  const suite = await runSuite({ scenarios: [loadScenario(file)], versions: versions.map((v) => modelVersion(getProfile(v))), factory: new InprocFactory(() => new MemoryStore(), "memory"), seed: 1 });
  return suite.runs;
}

describe("JSONPath checks", () => {
  const doc = { error_msg: "invalid endpoint", value: { plugins: { "ai-proxy-multi": { instances: [{ name: "a", weight: 1 }, { name: "b" }] } } } };

  it("say what the value was when a check does not hold, and nothing when all hold", () => {
    expect(runJsonChecks(doc, [{ path: "$.error_msg", contains: "endpoint" }, { path: "$.value.plugins['ai-proxy-multi'].instances[*].name", equals: ["a", "b"] }, { path: "$.nope", exists: false }])).toEqual([]);
    expect(runJsonChecks(doc, [{ path: "$.error_msg", matches: "^valid" }])).toEqual(["$.error_msg is invalid endpoint, expected it to match /^valid/"]);
    expect(runJsonChecks(doc, [{ path: "$.value.plugins['ai-proxy-multi'].instances[0]", equals: { name: "a" } }])).toEqual(['$.value.plugins[\'ai-proxy-multi\'].instances[0] is {"name":"a","weight":1}, expected {"name":"a"}']);
    expect(runJsonChecks(doc, [{ path: "$.missing", equals: null }])).toEqual(["$.missing: matches nothing"]);
    expect(runJsonChecks(doc, [{ path: "$.error_msg", exists: false }])).toEqual(["$.error_msg: is invalid endpoint, expected nothing"]);
  });

  it("are refused as written when they give no or two predicates, or an unbalanced path", () => {
    expect(jsonCheckProblem({ path: "$.a" })).toBe("give one of equals, contains, matches, exists (got none)");
    expect(jsonCheckProblem({ path: "$.a['b]", exists: true })).toBe("JSONPath $.a['b]: unbalanced quote");
    expect(jsonCheckProblem({ path: "$.a['b'", exists: true })).toBe("JSONPath $.a['b': unbalanced brackets");
    expect(jsonCheckProblem({ path: "$.a", equals: null })).toBeUndefined();
  });
});

describe("what the mock backends received", () => {
  it("a loopback backend records probes and forwarded requests as they arrived, with the gateway's clock", async () => {
    let now = 5000;
    const pool = new LoopbackBackends(new Resolver(), () => now);
    try {
      await pool.add({ name: "a", hosts: ["a.test"], mode: { kind: "healthy" } });
      const ip = pool.get("a").ip;
      await pool.probe({ ip, port: 80, type: "http", path: "/status?apikey=k", headers: ["Authorization: Bearer t"], timeoutMs: 1000, hostHeader: "foo.com" });
      now = 6000;
      await pool.probe({ ip, port: 80, type: "http", path: "/post", headers: [], timeoutMs: 1000, method: "POST", body: '{"probe":1}' });
      await pool.forward({ ip, port: 80, scheme: "http", method: "POST", path: "/v1/chat/completions?x=1", headers: { authorization: "Bearer c", "content-type": "application/json" }, body: '{"messages":[]}', timeoutMs: 1000 });
      const got = pool.received("a");
      expect(got.map((r) => [r.kind, r.time, r.method, r.path, r.query, r.body])).toEqual([
        ["probe", 5000, "GET", "/status", { apikey: "k" }, ""],
        ["probe", 6000, "POST", "/post", {}, '{"probe":1}'],
        ["chat", 6000, "POST", "/v1/chat/completions", { x: "1" }, '{"messages":[]}'],
      ]);
      expect(got[0]!.headers).toMatchObject({ authorization: "Bearer t", host: "foo.com" });
      // The pool's own mark that told the probe apart is not part of what was received.
      expect(Object.keys(got[0]!.headers).filter((h) => h.startsWith("x-harness"))).toEqual([]);
      // Without a Host header the library sends the ip, and so does the probe.
      expect(got[1]!.headers.host).toBe(ip);
      expect(pool.get("a").probes).toBe(2);
      expect(pool.get("a").chatRequests).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it("a simulated backend records the same, and nothing for a refused connection", async () => {
    const pool = new SimulatedBackends(new Resolver(), () => 42);
    await pool.add({ name: "a", hosts: ["a.test"], mode: { kind: "healthy" } });
    const ip = pool.get("a").ip;
    await pool.probe({ ip, port: 80, type: "http", path: "/s?q=1", headers: ["X-A: 1"], timeoutMs: 1000 });
    await pool.setMode("a", { kind: "down" });
    await pool.probe({ ip, port: 80, type: "http", path: "/s", headers: [], timeoutMs: 1000 });
    expect(pool.received().map((r) => [r.backend, r.kind, r.time, r.url, r.headers])).toEqual([["a", "probe", 42, "/s?q=1", { "x-a": "1", host: ip }]]);
    expect(pool.get("a").probes).toBe(2);
  });

  it("addressOf takes an address, a backend or a known host name, and names what it does not know", async () => {
    const pool = new SimulatedBackends(new Resolver({ "known.test": ["127.0.0.40", "127.0.0.41"] }));
    await pool.add({ name: "a", hosts: ["127.0.0.9"], mode: { kind: "healthy" } });
    expect([pool.addressOf("127.0.0.3"), pool.addressOf("a"), pool.addressOf("known.test")]).toEqual(["127.0.0.3", "127.0.0.9", "127.0.0.40"]);
    expect(() => pool.addressOf("x.test")).toThrow('"x.test" is neither an address, a backend (a) nor a known host name');
  });
});

describe("received assertions in a run", () => {
  it("count matching requests in a window, and say what arrived when none matches", async () => {
    const [run] = await runText(
      "received.yaml",
      `name: received
backends:
  a: {hosts: [a.test]}
steps:
  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: routes/checked-and-plain.json}
  - mark: put
  - request: {path: /ai/chat/completions, fixture: chat.json, status: 200}
  - wait: 4s
  - assert: {received: {backend: a, kind: chat, headers: {Authorization: "Bearer token"}, bodyContains: hello, count: 1}}
  - assert: {received: {kind: probe, path: /status, since: put, within: 1s, absent: true}}
  - assert: {received: {kind: probe, path: /status, since: put, atLeast: 2}}
  - assert: {received: {kind: probe, path: /other}}
expect: {default: passes}
`,
    );
    expect(run!.outcome).toBe("error");
    expect(run!.failure!.step).toBe(7);
    expect(run!.failure!.message).toMatch(/^line 12: received \(kind "probe", path "\/other"\) since the start: 0 of \d+ request\(s\), expected at least 1; last received: probe a GET \/status \[/);
  });
});

describe("a call step and an admin body check that do not hold say why", () => {
  it("a call's error, a JSONPath mismatch, an admin body that lacks a text", async () => {
    const runs = await runText(
      "call.yaml",
      `name: call
steps:
  - call: {function: construct_upstream, error: "instance configuration is nil", json: [{path: "$.result", equals: null}]}
  - call: {function: construct_upstream, arg: {name: x, provider: openai, weight: 1, override: {endpoint: "http://127.0.0.1:1"}}, json: [{path: "$.result.nodes[0].port", equals: 2}]}
expect: {default: passes}
`,
    );
    expect(runs[0]!.failure!.message).toBe("line 4: call apisix.plugins.ai-proxy-multi.construct_upstream: $.result.nodes[0].port is 1, expected 2");
    const [admin] = await runText(
      "admin.yaml",
      `name: admin
steps:
  - admin: {method: PUT, path: /apisix/admin/routes/1, body: {uri: /x, plugins: {ai-proxy-multi: {instances: []}}}, status: 400, bodyContains: "not this"}
expect: {default: passes}
`,
    );
    expect(admin!.failure!.message).toMatch(/^line 3: admin PUT \/apisix\/admin\/routes\/1: body lacks "not this"; body: \{"error_msg":/);
  });

  it("the model engine replaces and calls construct_upstream only, and says so", async () => {
    const [run] = await runText(
      "other-fn.yaml",
      `name: other
steps:
  - inject: {module: apisix.core.utils, function: parse_addr, raises: x}
expect: {default: passes}
`,
    );
    expect(run!.failure!.message).toBe("line 3: the model engine can replace or call only apisix.plugins.ai-proxy-multi.construct_upstream (its profile's constructUpstream), not apisix.core.utils.parse_addr; use --engine lua");
  });
});

describe("an external APISIX cannot be steered", () => {
  it("each step that reaches into the gateway throws TargetUnsupported, saying why", async () => {
    const t = new HttpTarget({ kind: "external", adminUrl: "http://127.0.0.1:1", gatewayUrl: "http://127.0.0.1:1", controlUrl: "http://127.0.0.1:1", apiKey: "k", harnessControl: false });
    const calls: [string, () => Promise<unknown>][] = [
      ["received", () => t.received()],
      ["dns", () => t.dns("a.test", ["127.0.0.2"])],
      ["inject", () => t.inject({ module: "m", function: "f", raises: "x" })],
      ["restore", () => t.restore("m", "f")],
      ["health", () => t.setHealth({ route: "1", instance: 0, node: "127.0.0.2", port: 80, healthy: false })],
      ["call", () => t.call({ module: "m", function: "f", times: 1 })],
    ];
    for (const [what, call] of calls) {
      const e = await call().catch((x: unknown) => x);
      expect(e, what).toBeInstanceOf(TargetUnsupported);
      expect((e as Error).message, what).toMatch(/need a target with harness control \(serve\): /);
    }
  });
});
