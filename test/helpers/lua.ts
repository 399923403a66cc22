import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { BackendSpec } from "../../harness/backends/backend.ts";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { luaVersions } from "../../harness/gateway/lua/lua-engine.ts";
import type { LuaSources } from "../../harness/gateway/lua/sources.ts";
import type { LogLevel } from "../../harness/gateway/log/error-log.ts";
import { InprocTarget } from "../../harness/targets/inproc.ts";

/** APISIX's trees and the libraries they pin, as this workspace keeps them beside the project. */
export const SHARED = fileURLToPath(new URL("../../../shared/", import.meta.url));
export const SOURCES: LuaSources = { apisix: `${SHARED}apisix-src`, luaDeps: `${SHARED}lua-deps` };
export const PATCHES = `${SHARED}apisix-patches`;

/**
 * Whether the lua engine can run here (LuaJIT and the shared trees): tests skip with this reason
 * on a developer's machine without them; in CI (where .ci/run installs LuaJIT) a missing part fails.
 */
export function luaUnavailable(): string | undefined {
  let why: string | undefined;
  if (!existsSync(SOURCES.apisix) || !existsSync(SOURCES.luaDeps)) why = `no ${SHARED}apisix-src or lua-deps beside the project`;
  else {
    try {
      luaVersions(["3.15.0"], SOURCES);
    } catch (e) {
      why = (e as Error).message;
    }
  }
  if (why && process.env.CI) throw new Error(`the lua engine cannot run in CI: ${why}`);
  return why;
}

/** An in-process gateway running APISIX's own Lua at a version, on a fresh in-memory store. */
export async function luaTarget(version: string, opts: { backends?: BackendSpec[]; seed?: number; workers?: number; logLevel?: LogLevel; hosts?: Record<string, string | string[]>; sources?: LuaSources; network?: "simulated" | "loopback" } = {}): Promise<InprocTarget> {
  const [v] = luaVersions([version], opts.sources ?? SOURCES);
  const create: Parameters<typeof InprocTarget.create>[0] = {
    version: v!,
    store: new MemoryStore(),
    backends: opts.backends ?? [{ name: "openai", hosts: ["api.openai.com"], mode: { kind: "healthy" } }],
    network: opts.network ?? "simulated",
    seed: opts.seed ?? 1,
    workers: opts.workers ?? 1,
  };
  if (opts.logLevel) create.logLevel = opts.logLevel;
  if (opts.hosts) create.hosts = opts.hosts;
  return InprocTarget.create(create);
}

/** The text of each log line without its time (for comparing runs). */
export async function logTexts(t: InprocTarget): Promise<string[]> {
  return (await t.logLines()).map((l) => l.text.replace(/^\S+ \S+ /, ""));
}
