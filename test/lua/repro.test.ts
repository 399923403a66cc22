import { afterAll, describe, expect, it, vi } from "vitest";
import { runRepro } from "../../harness/cli/repro.ts";
import { closeIdleWorkers, LuaWorker } from "../../harness/gateway/lua/lua-worker.ts";
import { luaUnavailable, PATCHES, SOURCES } from "../helpers/lua.ts";

const skip = luaUnavailable();
const lua = { engine: "lua", workers: "1", apisix: SOURCES.apisix, luaDeps: SOURCES.luaDeps };
afterAll(closeIdleWorkers);

describe.skipIf(skip)(`#13101 on APISIX's own Lua${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("3.15.0 and 3.16.0 crash every second with the report's lines; 3.17.0 and 3.18.0 do not", async () => {
    const record = await runRepro({ versions: "all", store: "memory", engine: lua, log: () => undefined });
    const row = (v: string) => record.results.find((r) => r.version === v)!;
    expect(record.engine).toBe("lua");
    expect(row("3.15.0")).toMatchObject({ verdict: "REPRODUCED", failures: 3, asKnown: true });
    expect(row("3.15.0").firstErrorLine).toMatch(
      /\[error\] \d+#\d+: \*\d+ \[lua\] healthcheck_manager\.lua:292: failed to run timer_working_pool_check: \/usr\/local\/apisix\/apisix\/healthcheck_manager\.lua:242: attempt to index local 'upstream' \(a nil value\), context: ngx\.timer$/,
    );
    expect(row("3.16.0")).toMatchObject({ verdict: "REPRODUCED", failures: 3, asKnown: true });
    expect(row("3.16.0").firstErrorLine).toMatch(
      /\[lua\] healthcheck_manager\.lua:288: failed to run timer_working_pool_check: \/usr\/local\/apisix\/apisix\/healthcheck_manager\.lua:238: attempt to index local 'upstream' \(a nil value\), context: ngx\.timer$/,
    );
    for (const v of ["3.17.0", "3.18.0"]) expect(row(v)).toMatchObject({ verdict: "NOT REPRODUCED", failures: 0, asKnown: true });
    expect(row("3.15.0").ran).toContain("lua-resty-healthcheck v3.2.0");
    expect(row("3.18.0").ran).toContain("lua-resty-healthcheck v3.2.2");
    expect(record.ok).toBe(true);
  });

  it("HARNESS_LUA_JIT=on runs the workers with the JIT compiler, as production does: the same verdicts and lines", async () => {
    const started: unknown[] = [];
    const command = LuaWorker.prototype.command;
    const spy = vi.spyOn(LuaWorker.prototype, "command").mockImplementation(function (this: LuaWorker, cmd, payload) {
      const reply = command.call(this, cmd, payload);
      if (cmd === "start") void reply.then((r) => started.push((r.result as { jit?: boolean }).jit));
      return reply;
    });
    const rows = async () => (await runRepro({ versions: "3.15.0,3.18.0", store: "memory", engine: lua, log: () => undefined })).results;
    try {
      const off = await rows();
      process.env.HARNESS_LUA_JIT = "on";
      const on = await rows();
      expect(started).toEqual([false, false, true, true]);
      expect(on.map((r) => r.ran)).toEqual(off.map((r) => r.ran.replace("JIT off", "JIT on")));
      const strip = (r: (typeof on)[number]) => ({ verdict: r.verdict, failures: r.failures, line: r.firstErrorLine });
      expect(on.map(strip)).toEqual(off.map(strip));
      expect(off[0]!.ran).toContain("JIT off");
    } finally {
      delete process.env.HARNESS_LUA_JIT;
      spy.mockRestore();
    }
  });

  it("the upstream fixes applied to 3.16.0 end the crash loop; a patched version is not judged against a release", async () => {
    const versions = [`3.16.0+${PATCHES}/13322.diff`, `3.16.0+${PATCHES}/13592.diff`].join(",");
    const record = await runRepro({ versions, store: "memory", engine: lua, log: () => undefined });
    for (const r of record.results) {
      expect(r).toMatchObject({ verdict: "NOT REPRODUCED", failures: 0, asKnown: undefined });
      expect(r.ran).toContain(`+ ${r.version.split("/").pop()}`);
    }
    expect(record.ok).toBe(true);
  });
});
