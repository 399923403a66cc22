import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { UsageError } from "../../errors.ts";
import { RUNTIME_DIR } from "./lua-worker.ts";

/** How this machine starts a LuaJIT worker, found once per process. */
export interface LuaRuntime {
  luajit: string;
  /** `setarch -R` (no address randomisation) when the kernel allows it. */
  setarch?: string[];
  /** The getrandom preload, when a C compiler could build it. */
  preload?: string;
  /** The line reader that polls before it sleeps (spin-read.c), when a C compiler could build it. */
  lineReader?: string;
  /** Why a part is missing (shown in run records). */
  notes: string[];
}

export const LUAJIT_INSTALL = "apt-get install -y luajit2 lua-cjson lua-dkjson lua-resty-lrucache";

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const p = join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME ?? (homedir() ? join(homedir(), ".cache") : tmpdir());
  return join(base, "apisix-harness");
}

/**
 * Build one of the runtime's C helpers (`<name>.c`) into a shared library in the cache, once per
 * source text (concurrent builders are harmless). `without` says what a run lacks when it cannot.
 */
function buildHelper(name: string, without: string, notes: string[]): string | undefined {
  const source = join(RUNTIME_DIR, `${name}.c`);
  const text = readFileSync(source);
  const out = join(cacheDir(), `${name}-${createHash("sha256").update(text).digest("hex").slice(0, 12)}.so`);
  if (existsSync(out)) return out;
  const cc = process.env.CC ?? onPath("cc") ?? onPath("gcc");
  if (!cc) {
    notes.push(`no C compiler: ${without}`);
    return undefined;
  }
  try {
    mkdirSync(cacheDir(), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    execFileSync(cc, ["-shared", "-fPIC", "-O2", "-o", tmp, source, "-ldl"], { stdio: ["ignore", "ignore", "pipe"] });
    renameSync(tmp, out);
    return out;
  } catch (e) {
    notes.push(`could not build ${name}.c (${(e as Error).message.split("\n")[0]}): ${without}`);
    return undefined;
  }
}

let found: LuaRuntime | undefined;

export function luaRuntime(): LuaRuntime {
  if (found) return found;
  const luajit = process.env.LUAJIT ?? onPath("luajit");
  if (!luajit) throw new UsageError(`--engine lua needs LuaJIT (OpenResty's branch) on PATH: ${LUAJIT_INSTALL}`);
  const probe = spawnSync(luajit, ["-e", "require('table.new'); require('cjson'); require('dkjson'); assert(package.searchpath('resty.lrucache', package.path), 'module resty.lrucache not found')"], { encoding: "utf8" });
  if (probe.status !== 0) {
    throw new UsageError(`--engine lua: ${luajit} lacks a module the harness needs (${(probe.stderr || probe.error?.message || "").split("\n")[0]}): ${LUAJIT_INSTALL}`);
  }
  const notes: string[] = [];
  let setarch: string[] | undefined;
  const arch = spawnSync("uname", ["-m"], { encoding: "utf8" }).stdout.trim();
  const sa = onPath("setarch");
  if (sa && spawnSync(sa, [arch, "-R", "true"]).status === 0) setarch = [sa, arch, "-R"];
  else notes.push("setarch -R is not available: table addresses are randomised");
  const preload = buildHelper("hash-seed", "pairs() order is not seeded (runs are not byte-for-byte replayable)", notes);
  const lineReader = buildHelper("spin-read", "workers sleep in the kernel while they wait for the harness (slower round trips)", notes);
  found = { luajit, notes, ...(setarch ? { setarch } : {}), ...(preload ? { preload } : {}), ...(lineReader ? { lineReader } : {}) };
  return found;
}
