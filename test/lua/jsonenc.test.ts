import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { RUNTIME_DIR } from "../../harness/gateway/lua/lua-worker.ts";
import { luaRuntime } from "../../harness/gateway/lua/runtime.ts";
import { luaUnavailable } from "../helpers/lua.ts";

const skip = luaUnavailable();

/** Each Lua expression encoded by runtime/jsonenc.lua (cjson.array_mt set, as the stubs set it): one line each. */
function encode(expressions: string[]): string[] {
  const script = `
    package.path = ${JSON.stringify(RUNTIME_DIR)} .. "?.lua;" .. package.path
    local cjson = require("cjson")
    cjson.array_mt = {}
    local array_mt = cjson.array_mt
    local encode = require("jsonenc")
    ${expressions.map((e) => `print(encode(${e}))`).join("\n")}`;
  const r = spawnSync(luaRuntime().luajit, ["-joff", "-e", script], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`luajit failed: ${r.stderr}`);
  return r.stdout.split("\n").slice(0, expressions.length);
}

describe.skipIf(skip)(`runtime/jsonenc.lua: values crossing to the harness as JSON${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("escapes quotes, backslashes and control characters, and leaves other strings as they are", () => {
    const [plain, quoted, controls, utf8] = encode([`"/ai/* [x] {y} é"`, `'say "hi" \\\\ there'`, `"a\\nb\\tc\\r\\b\\f\\1\\31"`, `"\\226\\130\\172"`]);
    expect(plain).toBe('"/ai/* [x] {y} é"');
    expect(JSON.parse(quoted!)).toBe('say "hi" \\ there');
    expect(controls).toBe('"a\\nb\\tc\\r\\b\\f\\u0001\\u001f"');
    expect(JSON.parse(controls!)).toBe("a\nb\tc\r\b\f\u0001\u001f");
    expect(JSON.parse(utf8!)).toBe("€");
  });

  it("tells arrays from objects as APISIX's cjson does: keys 1..n or array_mt make an array, any other table an object", () => {
    const out = encode([
      "{ 1, 2, { 3 } }",
      "setmetatable({}, array_mt)",
      "{}",
      "{ [1] = 1, [3] = 3 }",
      "{ 1, x = 2 }",
      "{ a = { b = { c = {} } }, n = cjson.null, f = function() end, list = setmetatable({ 'x' }, array_mt) }",
    ]);
    expect(out.map((t) => JSON.parse(t) as unknown)).toEqual([
      [1, 2, [3]],
      [],
      {},
      { "1": 1, "3": 3 },
      { "1": 1, x: 2 },
      { a: { b: { c: {} } }, n: null, list: ["x"] },
    ]);
    expect(out[1]).toBe("[]");
    expect(out[2]).toBe("{}");
  });

  it("writes integers whole, other numbers to 17 digits, and what JSON cannot hold as null", () => {
    expect(encode(["60000", "-3", "0.1", "1e15", "2^53", "0/0", "math.huge", "-math.huge", "true", "false", "nil"])).toEqual([
      "60000",
      "-3",
      "0.10000000000000001",
      "1000000000000000",
      "9007199254740992",
      "null",
      "null",
      "null",
      "true",
      "false",
      "null",
    ]);
  });

  it("starts afresh after a value it could not finish (a table that holds itself)", () => {
    const [after] = encode([`(function() local t = {} t.self = t assert(not pcall(encode, t)) return { ok = true } end)()`]);
    expect(JSON.parse(after!)).toEqual({ ok: true });
  });
});
