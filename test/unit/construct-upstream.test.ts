import { describe, expect, it } from "vitest";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { LuaError } from "../../harness/gateway/lua/lua-error.ts";
import { freshInstance, pluginEnv } from "../helpers/env.ts";

describe("constructUpstream without runtime DNS fields (an object fresh from a config refresh)", () => {
  for (const version of ["3.15.0", "3.16.0"]) {
    it(`${version}: returns nil and the 'failed to resolve endpoint' error`, () => {
      const env = pluginEnv();
      const result = getProfile(version).constructUpstream(freshInstance(), env);
      expect(result).toEqual({ ok: false, error: "failed to resolve endpoint for instance: openai-a" });
    });
  }

  for (const version of ["3.17.0", "3.18.0"]) {
    it(`${version}: resolves the endpoint itself and writes the fields onto the instance`, () => {
      const env = pluginEnv();
      const instance = freshInstance();
      const result = getProfile(version).constructUpstream(instance, env);
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.upstream.nodes.map((n) => [n.host, n.port, n.domain])).toEqual([["127.0.0.2", 443, "api.openai.com"]]);
      expect(result.upstream._nodes_ver).toBe(1);
      expect(instance._nodes_ver).toBe(1);
      expect(instance._dns_nodes?.map((n) => n.host)).toEqual(["127.0.0.2"]);
    });
  }

  it("3.17.0 adds auth headers to the probe and joins an auth query with '?', 3.18.0 with '&' after an existing query", () => {
    const instance = () =>
      freshInstance({
        auth: { header: { Authorization: "Bearer k" }, query: { key: "v" } },
        checks: { active: { http_path: "/health?x=1" } },
      });
    const r17 = getProfile("3.17.0").constructUpstream(instance(), pluginEnv());
    const r18 = getProfile("3.18.0").constructUpstream(instance(), pluginEnv());
    expect(r17.ok && r17.upstream.checks?.active.http_path).toBe("/health?x=1?key=v");
    expect(r18.ok && r18.upstream.checks?.active.http_path).toBe("/health?x=1&key=v");
    expect(r17.ok && r17.upstream.checks?.active.req_headers).toEqual(["Authorization: Bearer k"]);
  });
});

describe("constructUpstream after the request path set the runtime fields", () => {
  for (const version of ["3.15.0", "3.16.0", "3.17.0", "3.18.0", "suggested"]) {
    it(`${version}: builds one node per resolved address, carrying _nodes_ver`, () => {
      const env = pluginEnv();
      const profile = getProfile(version);
      const instance = freshInstance({ override: { endpoint: "http://backend.test:8080/v1" } });
      env.resolver.add("backend.test", ["127.0.0.9"]);
      profile.fields.resolve(instance, env);
      const result = profile.constructUpstream(instance, env);
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.upstream.nodes.map((n) => `${n.host}:${n.port}`)).toEqual(["127.0.0.9:8080"]);
      expect(result.upstream._nodes_ver).toBe(1);
      expect(result.upstream.checks?.active.http_path).toBe("/");
    });
  }

  it("3.15.0 keeps only the first address of a domain with several; 3.17.0 keeps all of them, sorted", () => {
    const hosts = { "multi.test": ["127.0.0.12", "127.0.0.11"] };
    const i15 = freshInstance({ override: { endpoint: "http://multi.test" } });
    const i17 = freshInstance({ override: { endpoint: "http://multi.test" } });
    const env = pluginEnv(hosts);
    getProfile("3.15.0").fields.resolve(i15, env);
    getProfile("3.17.0").fields.resolve(i17, env);
    const r15 = getProfile("3.15.0").constructUpstream(i15, env);
    const r17 = getProfile("3.17.0").constructUpstream(i17, env);
    expect(r15.ok && r15.upstream.nodes.map((n) => n.host)).toEqual(["127.0.0.12"]);
    expect(r17.ok && r17.upstream.nodes.map((n) => n.host)).toEqual(["127.0.0.11", "127.0.0.12"]);
  });
});

describe("constructUpstream(nil): the instance was removed from the route", () => {
  for (const version of ["3.15.0", "3.16.0"]) {
    it(`${version}: raises the Lua error of indexing a nil instance at ai-proxy-multi.lua:304`, () => {
      const call = () => getProfile(version).constructUpstream(undefined, pluginEnv());
      expect(call).toThrow(LuaError);
      expect(call).toThrow(/plugins\/ai-proxy-multi\.lua:304: attempt to index local 'instance' \(a nil value\)$/);
    });
  }
  for (const version of ["3.17.0", "3.18.0", "suggested", "fallback-without-get-node"]) {
    it(`${version}: returns nil and 'instance configuration is nil'`, () => {
      expect(getProfile(version).constructUpstream(undefined, pluginEnv())).toEqual({ ok: false, error: "instance configuration is nil" });
    });
  }
});

describe("fix candidates", () => {
  const vertex = () => freshInstance({ name: "vertex", provider: "vertex-ai", provider_conf: { project_id: "p", region: "us-central1" } });

  it("suggested computes the regional vertex-ai host through get_node without touching the instance", () => {
    const instance = vertex();
    const before = structuredClone(instance);
    const r = getProfile("suggested").constructUpstream(instance, pluginEnv());
    expect(r.ok && r.upstream.nodes.map((n) => n.domain)).toEqual(["us-central1-aiplatform.googleapis.com"]);
    expect(instance).toEqual(before);
  });

  it("fallback-without-get-node sends the same instance to the global host instead", () => {
    const r = getProfile("fallback-without-get-node").constructUpstream(vertex(), pluginEnv());
    expect(r.ok && r.upstream.nodes.map((n) => n.domain)).toEqual(["aiplatform.googleapis.com"]);
  });
});
