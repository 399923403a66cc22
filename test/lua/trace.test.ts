import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { luaUnavailable } from "../helpers/lua.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const skip = luaUnavailable();

/** The protocol lines a lua repro of 3.15.0 prints on stderr with HARNESS_LUA_TRACE set so. */
async function traced(mode: string): Promise<string[]> {
  const res = await execa(process.execPath, ["bin/harness.js", "repro", "--engine", "lua", "--store", "memory", "--versions", "3.15.0"], { cwd: ROOT, reject: false, env: { HARNESS_LUA_TRACE: mode }, timeout: 60_000 });
  expect(res.exitCode, res.stderr).toBe(0);
  return res.stderr.split("\n").flatMap((l) => /^\d+\.\d+ lua[<>] (.*)$/.exec(l)?.[1] ?? []);
}

describe.skipIf(skip)(`HARNESS_LUA_TRACE${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("1 prints each protocol line cut at 120 characters; full prints it whole", async () => {
    const cut = await traced("1");
    const whole = await traced("full");
    expect(cut.length).toBeGreaterThan(10);
    expect(Math.max(...cut.map((l) => l.length))).toBe(120);
    expect(whole).toHaveLength(cut.length);
    // The first schema check carries the plugin's whole schema: thousands of characters.
    expect(Math.max(...whole.map((l) => l.length))).toBeGreaterThan(1000);
    for (const l of whole) expect(() => JSON.parse(l), l.slice(0, 200)).not.toThrow();
  });
});
