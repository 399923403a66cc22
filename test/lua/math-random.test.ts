import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { LuaRandom } from "../../harness/gateway/healthcheck/lua-random.ts";
import { luaRuntime } from "../../harness/gateway/lua/runtime.ts";
import { luaUnavailable } from "../helpers/lua.ts";

const skip = luaUnavailable();

/** Seeds as the engines use them: the run's seed * 1000 + the worker's number, and a few others. */
const SEEDS = [1000, 1001, 2000, 3000, 11000, 1, 0, 42.5];

/**
 * The draws each seed is asked for: math.random() (times 2^52, an exact integer: LuaJIT's float has
 * 52 random bits), math.random(n) and math.random(m, n).
 */
const DRAWS = "for i = 1, 6 do out[#out + 1] = ('%.0f'):format(math.random() * 2^52) end; out[#out + 1] = math.random(3); out[#out + 1] = math.random(0, 255); out[#out + 1] = math.random(2, 2)";

function fromLuaJit(): string[] {
  const script = `for _, seed in ipairs({${SEEDS.join(",")}}) do math.randomseed(seed); local out = {}; ${DRAWS}; print(table.concat(out, " ")) end`;
  return execFileSync(luaRuntime().luajit, ["-e", script], { encoding: "utf8" }).trim().split("\n");
}

function fromModel(): string[] {
  return SEEDS.map((seed) => {
    const r = new LuaRandom(seed);
    const out: (string | number)[] = [];
    for (let i = 0; i < 6; i++) out.push(String(r.random() * 2 ** 52));
    out.push(r.int(1, 3), r.int(0, 255), r.int(2, 2));
    return out.join(" ");
  });
}

describe.skipIf(skip)(`math.random is LuaJIT's${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("the model draws the numbers LuaJIT draws after the same math.randomseed", () => {
    expect(fromModel()).toEqual(fromLuaJit());
  });
});
