import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ProvisionedStore } from "../etcd/provision.ts";
import { ownedTempDir, spawnOwned } from "../proc/index.ts";
import type { GatewayVersion } from "../gateway/engine.ts";
import { UsageError } from "../errors.ts";
import type { TargetFactory, TargetWorld } from "./target.ts";
import { checkLoopbackUrl, HttpTarget } from "./http-target.ts";

const HARNESS_BIN = fileURLToPath(new URL("../../bin/harness.js", import.meta.url));

export interface ServeReady {
  gateway: number;
  admin: number;
  control: number;
}

/** How long a serve child gets to print its ready line. */
const SERVE_READY_MS = 15_000;

/**
 * Start `harness serve` as a child process on free ports and wait for its ready line. The child
 * and its temp dir (world file, error log) are owned (harness/proc): stop() ends them, and so does
 * this process's end, however it ends. An abort of `signal` while it starts stops it and rejects
 * with the signal's reason.
 */
export async function spawnServe(args: { version: string; store: "etcd" | "memory"; etcdEndpoints?: string; prefix: string; world: TargetWorld; engineArgs?: string[]; seed?: number; signal?: AbortSignal }): Promise<{ ready: ServeReady; logFile: string; pid: number | undefined; stop: () => Promise<void> }> {
  args.signal?.throwIfAborted();
  const dir = ownedTempDir("serve");
  const worldFile = join(dir.path, "world.json");
  const logFile = join(dir.path, "error.log");
  writeFileSync(worldFile, JSON.stringify({ backends: args.world.backends, hosts: args.world.hosts }));
  const cli = ["serve", "--version", args.version, ...(args.engineArgs ?? []), "--seed", String(args.seed ?? 1), "--port", "0", "--admin-port", "0", "--control-port", "0", "--prefix", args.prefix, "--world", worldFile, "--log-file", logFile, "--log-level", args.world.logLevel ?? "warn", "--ready-json", "--quiet"];
  if (args.etcdEndpoints) cli.push("--etcd", args.etcdEndpoints);
  else cli.push("--store", args.store);
  const child = spawnOwned(process.execPath, [HARNESS_BIN, ...cli], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const stop = async (): Promise<void> => {
    try {
      await child.stop();
    } finally {
      await dir.remove();
    }
  };
  try {
    const ready = await new Promise<ServeReady>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`harness serve did not get ready within ${SERVE_READY_MS / 1000} s: ${stderr.trim()}`)), SERVE_READY_MS);
      const onAbort = (): void => reject(args.signal!.reason as Error);
      args.signal?.addEventListener("abort", onAbort, { once: true });
      const settle = (): void => {
        clearTimeout(timer);
        args.signal?.removeEventListener("abort", onAbort);
      };
      child.child.stdout?.on("data", (c: Buffer) => {
        out += c.toString();
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line) {
          settle();
          resolve((JSON.parse(line) as { ports: ServeReady }).ports);
        }
      });
      void child.exited.then((status) => {
        settle();
        reject(new Error(`harness serve exited before it was ready${status.error ? ` (${status.error.message})` : ""}: ${stderr.trim()}`));
      });
    });
    return { ready, logFile, pid: child.pid, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Each run gets its own `harness serve` child on free ports, sharing the runner's etcd. */
export function serveFactory(provisioned: ProvisionedStore, label: string, workers = 1): TargetFactory {
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  // Run ids restart with each suite; a factory that serves two suites (diff) still needs one prefix per run.
  let made = 0;
  return {
    name: "serve",
    store: label,
    realTime: true,
    async create(world: TargetWorld, version: GatewayVersion, runId: number, seed: number, signal?: AbortSignal) {
      const prefix = `/apisix-serve-${tag}-${++made}-${runId}`;
      const args: Parameters<typeof spawnServe>[0] = { version: version.name, store: provisioned.kind, prefix, world, seed, engineArgs: [...version.serveArgs, "--workers", String(world.workers ?? workers)] };
      if (provisioned.endpoints) args.etcdEndpoints = provisioned.endpoints.join(",");
      if (signal) args.signal = signal;
      const served = await spawnServe(args);
      const opts: ConstructorParameters<typeof HttpTarget>[0] = {
        kind: "serve",
        adminUrl: `http://127.0.0.1:${served.ready.admin}`,
        gatewayUrl: `http://127.0.0.1:${served.ready.gateway}`,
        controlUrl: `http://127.0.0.1:${served.ready.control}`,
        apiKey: "edd1c9f034335f136f87ad84b625c8f1",
        harnessControl: true,
        onClose: async () => {
          try {
            await served.stop();
          } finally {
            await provisioned.forgetPrefix(prefix);
          }
        },
      };
      if (signal) opts.signal = signal;
      return { target: new HttpTarget(opts), prefix };
    },
  };
}

export interface ExternalOptions {
  adminUrl?: string;
  gatewayUrl?: string;
  controlUrl?: string;
  apiKey?: string;
  errorLog?: string;
}

/**
 * A running gateway given on the command line (a real APISIX, or a `serve` process). It is checked
 * to answer before any run starts; every run uses the same gateway, so runs go one at a time.
 */
export async function externalFactory(o: ExternalOptions): Promise<TargetFactory> {
  const missing = (["adminUrl", "gatewayUrl", "controlUrl"] as const).filter((k) => !o[k]);
  const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}`;
  if (missing.length) throw new UsageError(`--target external needs ${missing.map(flag).join(", ")}`);
  const urls = { adminUrl: o.adminUrl!, gatewayUrl: o.gatewayUrl!, controlUrl: o.controlUrl! };
  for (const [k, v] of Object.entries(urls)) {
    try {
      checkLoopbackUrl(flag(k), v);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const admin = urls.adminUrl.replace(/\/+$/, "");
  try {
    await fetch(`${admin}/apisix/admin/routes`, { headers: { "x-api-key": o.apiKey ?? "" }, signal: AbortSignal.timeout(3000) });
  } catch (e) {
    throw new UsageError(`--admin-url: ${admin} does not answer (${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message})`);
  }
  // A serve process says which key prefix it uses; a real APISIX uses /apisix.
  let harnessControl = false;
  let prefix = "/apisix";
  try {
    const info = await fetch(`${urls.controlUrl.replace(/\/+$/, "")}/v1/harness/info`, { signal: AbortSignal.timeout(3000) });
    harnessControl = info.status === 200;
    if (harnessControl) prefix = ((await info.json()) as { prefix?: string }).prefix ?? prefix;
  } catch {
    harnessControl = false;
  }
  return {
    name: "external",
    store: "the external gateway's own",
    realTime: true,
    async create(_world: TargetWorld, _version: GatewayVersion, _runId: number, _seed: number, signal?: AbortSignal) {
      const opts: ConstructorParameters<typeof HttpTarget>[0] = {
        kind: "external",
        adminUrl: admin,
        gatewayUrl: urls.gatewayUrl.replace(/\/+$/, ""),
        controlUrl: urls.controlUrl.replace(/\/+$/, ""),
        apiKey: o.apiKey ?? "edd1c9f034335f136f87ad84b625c8f1",
        harnessControl,
      };
      if (o.errorLog) opts.errorLog = o.errorLog;
      if (signal) opts.signal = signal;
      return { target: new HttpTarget(opts), prefix };
    },
  };
}
