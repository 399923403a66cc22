import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import type { World } from "../targets/serve-process.ts";
import { throwIfInterrupted } from "./interrupt.ts";
import { addEngineOptions, intOption, storeOption, versionsOption, workersOption, type EngineCliOptions } from "./options.ts";
import { makeDirs } from "./output.ts";
import { UsageError, type CommandContext } from "./usage.ts";

interface ServeCliOptions extends EngineCliOptions {
  seed: string;
  version: string;
  port: string;
  adminPort: string;
  controlPort: string;
  etcd?: string;
  store: string;
  prefix: string;
  world?: string;
  logFile?: string;
  readyJson?: boolean;
  quiet?: boolean;
  logLevel: string;
}

const LOG_LEVELS = ["debug", "info", "notice", "warn", "error"] as const;

function port(name: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new UsageError(`${name}: expected a port number (0 picks a free one), got "${v}"`);
  return Number(v);
}

function readWorld(file: string): World {
  if (!existsSync(file)) throw new UsageError(`--world: no such file: ${file}`);
  try {
    const w = JSON.parse(readFileSync(file, "utf8")) as World;
    if (!Array.isArray(w.backends)) throw new Error('expected {"backends": [...], "hosts": {...}}');
    return w;
  } catch (e) {
    throw new UsageError(`--world ${file}: ${(e as Error).message}`);
  }
}

/**
 * The session's error log, created empty now (so `tail -f` works before the first line): a new
 * file per session by default, or the file given, emptied. Lines of an earlier session can then
 * never be taken for this one's.
 */
function freshLogFile(given: string | undefined, version: string): string {
  const file = given ?? join("reports", `serve-error-${version.replace(/[^\w.-]/g, "_")}-${new Date().toISOString().replace(/[:.]/g, "-")}.log`);
  try {
    makeDirs(dirname(file));
    writeFileSync(file, "");
  } catch (e) {
    throw new UsageError(`--log-file ${file}: cannot write it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return file;
}

export function registerServe(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command("serve")
    .description("run the reference gateway on 127.0.0.1 with real time, so a bug report's curl commands work against it")
    .requiredOption("--version <version>", "version profile or fix candidate, e.g. 3.15.0")
    .option("--port <port>", "data plane port", "9080")
    .option("--admin-port <port>", "Admin API port", "9180")
    .option("--control-port <port>", "control API port (APISIX's GET /v1/healthcheck; the harness's /v1/harness/checkers and /v1/harness/pools)", "9090")
    .option("--etcd <urls>", "etcd endpoints to use (default: start a local etcd, else the in-memory store)")
    .option("--store <kind>", "etcd or memory, when --etcd is not given", "etcd")
    .option("--prefix <prefix>", "etcd key prefix", "/apisix")
    .option("--world <file>", 'JSON {"backends": [...], "hosts": {...}} of mock backends (default: one healthy mock per known provider host)')
    .option("--log-file <file>", "error log file, emptied at start (default: a new reports/serve-error-<version>-<time>.log per session)")
    .option("--ready-json", "print one JSON line with the ports once ready (for programs that start serve)")
    .option("--quiet", "do not echo error log lines to stdout")
    .option("--log-level <level>", `error log level: ${LOG_LEVELS.join(", ")} (APISIX's default config says warn)`, "warn")
    .option("--seed <n>", "decides what APISIX leaves to chance (the lua engine's pairs() order over the pools)", "1");
  addEngineOptions(cmd).action(async (o: ServeCliOptions) => {
      const versions = await versionsOption("--version", o.version, o);
      if (versions.length !== 1) throw new UsageError(`--version: serve runs one version, got ${versions.length}`);
      const version = versions[0]!;
      const workers = workersOption(o);
      const seed = intOption("--seed", o.seed);
      const logLevel = LOG_LEVELS.find((l) => l === o.logLevel);
      if (!logLevel) throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(", ")}, got "${o.logLevel}"`);
      const ports = { port: port("--port", o.port), admin: port("--admin-port", o.adminPort), control: port("--control-port", o.controlPort) };
      const store = storeOption(o.store);
      const [{ acquireStore }, { defaultWorld, startServe }] = await Promise.all([import("../etcd/provision.ts"), import("../targets/serve-process.ts")]);
      const world = o.world ? readWorld(o.world) : defaultWorld();
      const logFile = freshLogFile(o.logFile, version.name);
      const log = (l: string): void => void process.stderr.write(l + "\n");
      const storeOpts: Parameters<typeof acquireStore>[0] = { prefer: store, log, signal: ctx.signal };
      if (o.etcd) storeOpts.endpoints = o.etcd.split(",");
      const provisioned = await acquireStore(storeOpts).catch((e: unknown) => {
        throwIfInterrupted(ctx.signal);
        throw e;
      });
      let running;
      try {
        const serveOpts: Parameters<typeof startServe>[0] = { version, seed, workers, logLevel, store: provisioned.store, prefix: o.prefix, port: ports.port, adminPort: ports.admin, controlPort: ports.control, world, logFile };
        if (!o.quiet) serveOpts.echo = (line) => void process.stdout.write(line + "\n");
        running = await startServe(serveOpts);
      } catch (e) {
        await provisioned.release();
        throwIfInterrupted(ctx.signal);
        throw e;
      }
      if (o.readyJson) process.stdout.write(JSON.stringify({ ports: running.ports, backends: running.backends }) + "\n");
      log(`serve: reference gateway ${version.name} on 127.0.0.1 (real time): ${running.gateway.engine.description}`);
      log(`  data plane  http://127.0.0.1:${running.ports.gateway}`);
      log(`  Admin API   http://127.0.0.1:${running.ports.admin}  (X-API-KEY: edd1c9f034335f136f87ad84b625c8f1)`);
      log(`  control API http://127.0.0.1:${running.ports.control}/v1/healthcheck (as APISIX: ai-proxy-multi's checkers are not listed)`);
      log(`  checkers    http://127.0.0.1:${running.ports.control}/v1/harness/checkers and /v1/harness/pools (the harness's own view)`);
      log(`  error log   ${logFile}  (new for this session)`);
      log(`  backends    ${Object.entries(running.backends).map(([n, p]) => `${n} -> 127.0.0.1:${p}`).join(", ")}`);
      log("  Ctrl-C stops it and everything it started");
      // Until interrupted: then the gateway (and its servers) first, the store after.
      await new Promise<void>((resolve) => (ctx.signal.aborted ? resolve() : ctx.signal.addEventListener("abort", () => resolve(), { once: true })));
      try {
        await running.close();
      } finally {
        await provisioned.release();
      }
      throwIfInterrupted(ctx.signal);
    });
}
