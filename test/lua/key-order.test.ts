import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { HashOrder } from "../../harness/gateway/healthcheck/lua-random.ts";
import { RUNTIME_DIR } from "../../harness/gateway/lua/lua-worker.ts";
import { luaRuntime } from "../../harness/gateway/lua/runtime.ts";
import { luaUnavailable } from "../helpers/lua.ts";

const skip = luaUnavailable();

/** Run a Lua chunk with runtime/key_order.lua installed (as a worker with HARNESS_TABLE_ORDER=sorted has it); its printed lines. */
function lua(body: string): string[] {
  const script = `package.path = ${JSON.stringify(RUNTIME_DIR)} .. "?.lua;" .. package.path\nrequire("key_order").install()\n${body}`;
  const r = spawnSync(luaRuntime().luajit, ["-"], { input: script, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`luajit failed: ${r.stderr}`);
  return r.stdout.trim().split("\n");
}

describe("the model's HashOrder in key order", () => {
  it("gives a map's entries sorted by key whatever the seed; hash order depends on the seed", () => {
    const map = new Map(["/apisix/routes/2", "/apisix/routes/10", "/apisix/routes/1", "b0-1", "a"].map((k) => [k, k.length]));
    const sorted = [...map.keys()].sort();
    for (const seed of [1, 2, 3]) expect(new HashOrder(seed, "", "sorted").entries(map).map(([k]) => k)).toEqual(sorted);
    const hashed = new Set([1, 2, 3, 4, 5].map((seed) => new HashOrder(seed).entries(map).map(([k]) => k).join(" ")));
    expect(hashed.size).toBeGreaterThan(1);
  });
});

describe.skipIf(skip)(`runtime/key_order.lua: pairs and next in key order${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("walks numbers (by value), then strings (byte order), then booleans, then the rest, whatever the insertion order", () => {
    const [viaPairs, viaNext] = lua(`
      local f = function() end
      local t = {}
      for _, k in ipairs({ "zeta", 10, "Alpha", true, "alpha", 2.5, false, "b", -3, "a10", "a9" }) do t[k] = 1 end
      t[f] = 1
      local function name(k) return k == f and "fn" or tostring(k) end
      local a = {}
      for k in pairs(t) do a[#a + 1] = name(k) end
      local b, k = {}, next(t)
      while k ~= nil do b[#b + 1] = name(k); k = next(t, k) end
      print(table.concat(a, " ")); print(table.concat(b, " "))`);
    const want = "-3 2.5 10 Alpha a10 a9 alpha b zeta false true fn";
    expect(viaPairs).toBe(want);
    expect(viaNext).toBe(want);
  });

  it("keeps Lua's next() protocol: fields set to nil mid-walk are skipped, the walk goes on past the current one; a bad key errors", () => {
    const out = lua(`
      local t = { a = 1, b = 2, c = 3, d = 4, e = 5 }
      local seen, k, v = {}, next(t)
      while k ~= nil do
        seen[#seen + 1] = k .. "=" .. v
        if k == "b" then t.b = nil; t.d = nil end
        k, v = next(t, k)
      end
      print(table.concat(seen, " "))
      seen = {}
      for k in pairs(t) do seen[#seen + 1] = k; t[k] = nil end
      print(table.concat(seen, " "), next(t))
      print(next({}), select("#", next({})))
      print(pcall(next, { x = 1 }, "y"))
      print(select(2, pcall(pairs, nil)))`);
    expect(out).toEqual([
      "a=1 b=2 c=3 e=5",
      "a c e\tnil",
      "nil\t1",
      "false\tinvalid key to 'next'",
      "bad argument #1 to 'pairs' (table expected, got nil)",
    ]);
  });

  it("nested walks of one table and a next() walk that did not start at nil are independent and complete", () => {
    const out = lua(`
      local t = { x = 1, y = 2, z = 3 }
      local pairsSeen = {}
      for a in pairs(t) do for b in pairs(t) do pairsSeen[#pairsSeen + 1] = a .. b end end
      print(table.concat(pairsSeen, " "))
      local rest, k = {}, next(t, "x")
      while k do rest[#rest + 1] = k; k = next(t, k) end
      print(table.concat(rest, " "))
      local loops = 0
      for k, v in next, t do loops = loops + v end
      print(loops)`);
    expect(out).toEqual(["xx xy xz yx yy yz zx zy zz", "y z", "6"]);
  });
});
