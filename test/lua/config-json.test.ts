import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { RUNTIME_DIR } from "../../harness/gateway/lua/lua-worker.ts";
import { luaRuntime } from "../../harness/gateway/lua/runtime.ts";
import { luaUnavailable } from "../helpers/lua.ts";

const skip = luaUnavailable();

/**
 * Decode each text with runtime/config_json.lua and with dkjson (what it decoded with before, and
 * still falls back to); print per text "same" or where they differ, and at the end whether dkjson
 * had been loaded before the comparison needed it (that is, whether any text took the fallback).
 */
function compare(texts: string[]): { verdicts: string[]; dkjsonUsed: boolean } {
  const script = `
    package.path = ${JSON.stringify(RUNTIME_DIR)} .. "?.lua;" .. package.path
    local cjson = require("cjson")
    local config_json = require("config_json")
    local array_mt = {}
    local texts = require("cjson").decode(io.read("*a"))
    local results = {}
    for i, text in ipairs(texts) do results[i] = { config_json.decode(text, array_mt, cjson.null) } end
    local used = package.loaded.dkjson ~= nil
    local dkjson = require("dkjson")
    local function same(a, b, path)
      if type(a) ~= type(b) then return path .. ": " .. type(a) .. " vs " .. type(b) end
      if type(a) ~= "table" then
        if a == b or (a ~= a and b ~= b) then return nil end
        return path .. ": " .. tostring(a) .. " vs " .. tostring(b)
      end
      if getmetatable(a) ~= getmetatable(b) then return path .. ": metatable differs" end
      for k, v in pairs(a) do
        local d = same(v, b[k], path .. "." .. tostring(k))
        if d then return d end
      end
      for k in pairs(b) do if a[k] == nil then return path .. "." .. tostring(k) .. ": missing" end end
      return nil
    end
    for i, text in ipairs(texts) do
      local want, _, err = dkjson.decode(text, 1, cjson.null, nil, array_mt)
      local got, gerr = results[i][1], results[i][2]
      if err then want = nil end
      print(same(got, want, "$") or (gerr ~= err and ("error: " .. tostring(gerr) .. " vs " .. tostring(err))) or "same")
    end
    print(used and "dkjson used" or "dkjson not used")`;
  const r = spawnSync(luaRuntime().luajit, ["-e", script], { input: JSON.stringify(texts), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`luajit failed: ${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return { verdicts: lines.slice(0, -1), dkjsonUsed: lines.at(-1) === "dkjson used" };
}

/** Texts cjson takes: they must decode exactly as dkjson with array_mt decodes them. */
const FAST = [
  JSON.stringify({ uri: "/ai/*", plugins: { "ai-proxy-multi": { instances: [{ name: "a", weight: 1, checks: { active: { healthy: { http_statuses: [200, 302] } } } }], fallback_strategy: null } } }),
  JSON.stringify({ n: [0.1, -0, 1e300, 12345678901234567890, -3], s: "é \u0000 \u2028 \ud83d\ude00 \"q\" \\ /", nested: [[1, [2, [3]]], { a: {} }] }),
  JSON.stringify([null, 1, null]),
  '{"a" : { } , "b" :\n[ 1 ]}',
  '"just a string"',
  "42",
  "null",
  '{"1": "a key that looks like an index", "2": {}}',
];

/** Texts that need dkjson: an empty array (in a value or, indistinguishably, in a string), or what cjson refuses. */
const SLOW = [
  JSON.stringify({ nodes: [], upstream: { nodes: {} } }),
  '{"a": [ ], "b": [[]]}',
  '{"a": [\n], "b": [\t\r]}',
  JSON.stringify({ pattern: "[]", regex: "a[ ]b" }),
  '{"a": NaN}',
  '{"a": 0x10}',
  '{"a": 1,}',
  "{broken",
  "",
  `${"[".repeat(1100)}1${"]".repeat(1100)}`,
];

describe.skipIf(skip)(`runtime/config_json.lua: config values decoded as dkjson with array_mt decodes them${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("decodes texts without an empty array by cjson alone, to the same tables, arrays marked and objects not", () => {
    const { verdicts, dkjsonUsed } = compare(FAST);
    expect(verdicts).toEqual(FAST.map(() => "same"));
    expect(dkjsonUsed).toBe(false);
  });

  it("gives empty arrays, texts with [] in a string, and texts cjson refuses to dkjson: same tables, same errors", () => {
    for (const text of SLOW) {
      const { verdicts, dkjsonUsed } = compare([text]);
      expect({ text: text.slice(0, 40), verdicts }).toEqual({ text: text.slice(0, 40), verdicts: ["same"] });
      expect(dkjsonUsed).toBe(true);
    }
  });
});
