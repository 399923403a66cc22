import { afterEach, describe, expect, it } from "vitest";
import { HashOrder, LuaRandom } from "../../harness/gateway/healthcheck/lua-random.ts";
import { RoundRobin, ServerPicker } from "../../harness/gateway/plugins/ai-proxy-multi/picker.ts";
import type { InprocTarget } from "../../harness/targets/inproc.ts";
import { CHAT, fixtureText, inproc } from "../helpers/inproc.ts";
import { staleInstances } from "../helpers/stale-picker.ts";

let t: InprocTarget | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const JSON_HEADERS = { "content-type": "application/json" };

describe("lua-resty-balancer's round robin (resty/roundrobin.lua@v0.05)", () => {
  const sequence = (rr: RoundRobin, n: number) => Array.from({ length: n }, () => rr.find());

  it("interleaves by weight (a:2, b:1 gives a a b, not nginx's smooth a b a)", () => {
    const order = new HashOrder(1);
    const nodes = new Map([["a", 2], ["b", 1]]);
    // Whatever the hash order and the start, a period of three holds a twice and b once, and
    // the a's come together: the interleaved algorithm, not the smooth one.
    for (let seed = 1; seed <= 20; seed++) {
      const s = sequence(new RoundRobin(nodes, order, new LuaRandom(seed)), 6).join("");
      expect(["aabaab", "abaaba", "baabaa"]).toContain(s);
    }
  });

  it("starts at a random node for each picker build; the run's seed decides which", () => {
    const nodes = new Map([["a", 1], ["b", 1], ["c", 1]]);
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 30; seed++) firsts.add(new RoundRobin(nodes, new HashOrder(7), new LuaRandom(seed)).find());
    expect(firsts).toEqual(new Set(["a", "b", "c"]));
    const again = (seed: number) => sequence(new RoundRobin(nodes, new HashOrder(7), new LuaRandom(seed)), 5);
    expect(again(3)).toEqual(again(3));
  });

  it("a single node is always it, weight 0 included; several priorities use the highest only", () => {
    expect(sequence(new RoundRobin(new Map([["only", 0]]), new HashOrder(1), new LuaRandom(1)), 3)).toEqual(["only", "only", "only"]);
    const p = new ServerPicker([{ name: "low", weight: 5, priority: 0 }, { name: "high", weight: 1, priority: 2 }, { name: "mid", weight: 1, priority: 1 }], new HashOrder(1), new LuaRandom(1));
    expect([p.pick(), p.pick(), p.pick()]).toEqual(["high", "high", "high"]);
  });

  it("in the gateway, which instance answers first changes with the seed", async () => {
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 8; seed++) {
      const target = await inproc("3.18.0", undefined, "simulated", seed);
      try {
        await target.admin("PUT", "/apisix/admin/routes/1", fixtureText("routes/two-backends.json"));
        firsts.add((await target.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT)).headers["x-harness-instance"]!);
      } finally {
        await target.close();
      }
    }
    expect(firsts).toEqual(new Set(["a", "b"]));
  });
});

describe("the stale server picker of apache/apisix#13505", () => {
  for (const version of ["3.15.0", "3.16.0", "3.17.0"]) {
    it(`${version}: after a config change the picker built before the checkers existed is reused: b, known down, gets every second request`, async () => {
      t = await inproc(version);
      const answered = await staleInstances(t);
      expect(answered.filter((i) => i === "b")).toHaveLength(2);
    });
  }

  it("3.18.0: the per-instance key (\"x\" until a checker exists) rebuilds the picker, and b gets nothing", async () => {
    t = await inproc("3.18.0");
    expect(await staleInstances(t)).toEqual(["a", "a", "a", "a"]);
  });
});

describe("the request path at each release", () => {
  it("3.15.0/3.16.0 resolve and queue checkers before the body is checked; 3.17.0+ refuse a bad body first", async () => {
    for (const [version, queued] of [["3.15.0", 2], ["3.16.0", 2], ["3.17.0", 0], ["3.18.0", 0]] as const) {
      const target = await inproc(version);
      try {
        await target.admin("PUT", "/apisix/admin/routes/1", fixtureText("routes/two-backends.json"));
        expect((await target.request("POST", "/ai/chat/completions", JSON_HEADERS, "not json")).status).toBe(400);
        expect(Object.keys((await target.pools())!.waiting), version).toHaveLength(queued);
      } finally {
        await target.close();
      }
    }
  });

  it("3.15.0 takes one DNS answer at random per request: a name with two addresses changes host and bumps _nodes_ver", async () => {
    const backends = [{ name: "m1", hosts: ["m1.test"], mode: { kind: "healthy" as const } }, { name: "m2", hosts: ["m2.test"], mode: { kind: "healthy" as const } }];
    const versions = new Set<string>();
    t = await inproc("3.15.0", backends);
    t.backends.resolver.add("multi.test", [t.backends.get("m1").ip, t.backends.get("m2").ip]);
    const route = { uri: "/ai/*", plugins: { "ai-proxy-multi": { instances: ["x", "y"].map((name) => ({ name, provider: "openai-compatible", weight: 1, auth: { header: { k: "v" } }, override: { endpoint: "http://multi.test/v1" }, checks: { active: { type: "tcp", healthy: { interval: 1 }, unhealthy: { interval: 1 } } } })) } } };
    await t.admin("PUT", "/apisix/admin/routes/1", JSON.stringify(route));
    for (let i = 0; i < 8; i++) {
      await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT);
      for (const v of Object.values((await t.pools())!.waiting)) versions.add(v);
    }
    // The route's modifiedIndex followed by _nodes_ver: more than one nodes version was asked for.
    expect(versions.size).toBeGreaterThan(1);
  });

  it("a timer that meets a deleted route warns 'resource not found' (resource.lua:76@3.15.0, :87@3.18.0)", async () => {
    for (const [version, line] of [["3.15.0", 76], ["3.18.0", 87]] as const) {
      const target = await inproc(version);
      try {
        await target.admin("PUT", "/apisix/admin/routes/1", fixtureText("routes/two-backends.json"));
        await target.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT);
        await target.wait(2000);
        await target.admin("DELETE", "/apisix/admin/routes/1");
        await target.wait(1000);
        const warns = (await target.logLines()).filter((l) => l.text.includes("resource not found"));
        expect(warns.map((l) => l.text.replace(/^.*? \*\d+ /, ""))).toEqual(
          Array(2).fill(`[lua] resource.lua:${line}: fetch_latest_conf(): resource not found: 1 in /routesthis can happen if the resource was deleted, context: ngx.timer`),
        );
      } finally {
        await target.close();
      }
    }
  });

  it("DNS errors: resolver.lua then ai-proxy-multi.lua, basenames, with the request's context", async () => {
    for (const [version, resolver, plugin] of [
      ["3.15.0", "resolver.lua:80: parse_domain()", "ai-proxy-multi.lua:174: parse_domain_for_node()"],
      ["3.18.0", "resolver.lua:129: parse_domain_all()", "ai-proxy-multi.lua:297: parse_domain_for_nodes()"],
    ] as const) {
      const target = await inproc(version);
      try {
        const route = JSON.parse(fixtureText("routes/two-backends.json")) as { plugins: { "ai-proxy-multi": { instances: { override: { endpoint: string } }[] } } };
        route.plugins["ai-proxy-multi"].instances[1]!.override.endpoint = "http://nowhere.test/v1";
        await target.admin("PUT", "/apisix/admin/routes/1", JSON.stringify(route));
        await target.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT);
        const errors = (await target.logLines()).filter((l) => l.level === "error").map((l) => l.text.replace(/^.*? \*\d+ /, ""));
        const err = "failed to query the DNS server: dns server error: 3 name error";
        const ctx = 'client: 127.0.0.1, server: , request: "POST /ai/chat/completions HTTP/1.1", host: "127.0.0.1"';
        expect(errors.slice(0, 2)).toEqual([`[lua] ${resolver}: failed to parse domain: nowhere.test, error: ${err}, ${ctx}`, `[lua] ${plugin}: dns resolver domain: nowhere.test error: ${err}, ${ctx}`]);
      } finally {
        await target.close();
      }
    }
  });

  it("3.18.0 probes a domain node with the domain as Host, even when checks.active.host is set; 3.17.0 with the checks host", async () => {
    for (const [version, host] of [["3.17.0", "probe.test"], ["3.18.0", "a.test"]] as const) {
      const target = await inproc(version, undefined, "loopback");
      try {
        const route = JSON.parse(fixtureText("routes/two-backends.json")) as { plugins: { "ai-proxy-multi": { instances: { checks: { active: Record<string, unknown> } }[] } } };
        for (const ins of route.plugins["ai-proxy-multi"].instances) ins.checks.active.host = "probe.test";
        await target.admin("PUT", "/apisix/admin/routes/1", JSON.stringify(route));
        await target.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT);
        await target.wait(2500);
        // The Host header of each HTTP probe backend a received.
        const seen = target.backends.received("a").filter((r) => r.kind === "probe").map((r) => r.headers.host ?? "");
        expect(seen.length, version).toBeGreaterThan(0);
        expect(new Set(seen), version).toEqual(new Set([host]));
      } finally {
        await target.close();
      }
    }
  });
});
