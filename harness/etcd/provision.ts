/**
 * Decide which store a run uses, start it, and say so in one line.
 *
 * Order: prefer "memory" -> in-memory; explicit endpoints / ETCD_ENDPOINTS -> that etcd (it must
 * answer: the user asked for it); a local etcd binary (ETCD_BIN or PATH) -> start one; a Docker
 * engine -> an etcd container; otherwise in-memory, with the reasons the others were skipped.
 */

import { randomBytes } from "node:crypto";
import { MemoryStore } from "../gateway/config/memory-store.ts";
import type { Store } from "../gateway/config/store.ts";
import { dockerAvailable, ETCD_IMAGE, startEtcdContainer } from "./container.ts";
import { EtcdStore } from "./etcd-store.ts";
import { findEtcdBinary, startLocalEtcd } from "./local-etcd.ts";

export type StoreSource = "ETCD_ENDPOINTS" | "endpoints" | "local-binary" | "container" | "memory";

export interface ProvisionedStore {
  store: Store;
  kind: "etcd" | "memory";
  /** Where the store came from. "endpoints" = given by the caller (opts.endpoints, e.g. --etcd). */
  source: StoreSource;
  /** Why this store: the text in parentheses of the "store: ..." line. */
  reason: string;
  /** Milliseconds until the store was usable (etcd start, or the check of given endpoints). */
  startMs: number;
  /** etcd client URLs when kind is "etcd", for child processes that connect on their own. */
  endpoints?: string[];
  /** Close the store and stop whatever was started for it. Idempotent. */
  release(): Promise<void>;
  /**
   * Delete the keys a run wrote under its own prefix, when the etcd is the user's (ETCD_ENDPOINTS,
   * --etcd); a no-op on an etcd or memory store the harness made for itself and throws away.
   */
  forgetPrefix(prefix: string): Promise<void>;
}

export interface AcquireOptions {
  prefer?: "etcd" | "memory";
  /** Where the one "store: ..." line goes. Default: stderr. */
  log?: (line: string) => void;
  /** etcd endpoints given explicitly (CLI --etcd); like ETCD_ENDPOINTS, they must answer. */
  endpoints?: string[];
  /** Environment to read ETCD_ENDPOINTS, ETCD_BIN, PATH, DOCKER_HOST from. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Called when a local etcd has been spawned, before it is healthy. */
  onSpawned?: () => void;
  /** Stop waiting for a starting etcd (the command was interrupted). */
  signal?: AbortSignal;
}

const defaultLog = (line: string): void => void process.stderr.write(line + "\n");

/** What was provisioned, before any client is made: shared runs make one client each. */
interface Backend {
  kind: "etcd" | "memory";
  source: StoreSource;
  reason: string;
  startMs: number;
  endpoints?: string[];
  line: string;
  stop(): Promise<void>;
}

function hostPort(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return endpoint;
  }
}

function normalizeEndpoint(e: string): string {
  return /^[a-z]+:\/\//i.test(e) ? e : `http://${e}`;
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function checkGivenEndpoints(endpoints: string[], source: "ETCD_ENDPOINTS" | "endpoints", raw: string): Promise<Backend> {
  const t0 = performance.now();
  const probe = new EtcdStore(endpoints, "probe");
  let version: string;
  try {
    ({ version } = await probe.status());
  } catch (err) {
    throw new Error(
      source === "ETCD_ENDPOINTS"
        ? `ETCD_ENDPOINTS=${raw} is set but etcd does not answer there: ${msg(err)} (unset ETCD_ENDPOINTS to let the harness start its own etcd)`
        : `etcd endpoints ${raw} do not answer: ${msg(err)}`,
    );
  } finally {
    await probe.close();
  }
  const startMs = Math.round(performance.now() - t0);
  const reason = `${source === "ETCD_ENDPOINTS" ? `ETCD_ENDPOINTS=${raw}` : `endpoints ${raw}`}, answered in ${startMs} ms`;
  return { kind: "etcd", source, reason, startMs, endpoints, line: `store: etcd ${version} (${reason})`, stop: async () => {} };
}

async function provisionBackend(opts: AcquireOptions): Promise<Backend> {
  const env = opts.env ?? process.env;
  const t0 = performance.now();
  if (opts.prefer === "memory") {
    const reason = `requested: prefer memory`;
    return { kind: "memory", source: "memory", reason, startMs: 0, line: `store: in-memory (${reason})`, stop: async () => {} };
  }

  if (opts.endpoints && opts.endpoints.length > 0) {
    const endpoints = opts.endpoints.map((e) => normalizeEndpoint(e.trim())).filter((e) => e !== "http://");
    return checkGivenEndpoints(endpoints, "endpoints", endpoints.join(","));
  }

  const rawEnv = env.ETCD_ENDPOINTS?.trim();
  if (rawEnv) {
    const endpoints = rawEnv.split(",").map((e) => e.trim()).filter(Boolean).map(normalizeEndpoint);
    if (endpoints.length === 0) throw new Error(`ETCD_ENDPOINTS="${env.ETCD_ENDPOINTS}" names no endpoint`);
    return checkGivenEndpoints(endpoints, "ETCD_ENDPOINTS", rawEnv);
  }

  const skipped: string[] = [];
  const binary = findEtcdBinary(env);
  if (binary.path) {
    try {
      const onSpawned = (): void => opts.onSpawned?.();
      const etcd = await startLocalEtcd(opts.signal ? { bin: binary.path, onSpawned, signal: opts.signal } : { bin: binary.path, onSpawned });
      const startMs = Math.round(performance.now() - t0);
      const note = binary.reason.startsWith("ETCD_BIN=") && binary.reason.includes("not an executable") ? `; ${binary.reason}` : "";
      const reason = `local binary ${binary.path}, ${hostPort(etcd.endpoint)}, started in ${startMs} ms${note}`;
      return {
        kind: "etcd",
        source: "local-binary",
        reason,
        startMs,
        endpoints: [etcd.endpoint],
        line: `store: etcd ${etcd.version} (${reason})`,
        stop: () => etcd.stop(),
      };
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      // The binary is there but would not run: say so, and try the next option.
      skipped.push(`etcd binary ${binary.path} failed to start: ${msg(err)}`);
    }
  } else {
    skipped.push(binary.reason);
  }
  skipped.push("ETCD_ENDPOINTS unset");

  const docker = await dockerAvailable(env);
  if (docker.available) {
    try {
      const tc = await startEtcdContainer();
      const startMs = Math.round(performance.now() - t0);
      const reason = `container ${ETCD_IMAGE} at ${hostPort(tc.endpoint)}, started in ${startMs} ms; ${skipped.join(", ")}`;
      return {
        kind: "etcd",
        source: "container",
        reason,
        startMs,
        endpoints: [tc.endpoint],
        line: `store: etcd ${tc.version} (${reason})`,
        stop: () => tc.stop(),
      };
    } catch (err) {
      skipped.push(`etcd container failed to start: ${msg(err)}`);
    }
  } else {
    skipped.push(`Docker not available: ${docker.reason}`);
  }

  const reason = skipped.join(", ");
  return {
    kind: "memory",
    source: "memory",
    reason,
    startMs: Math.round(performance.now() - t0),
    line: `store: in-memory (${reason})`,
    stop: async () => {},
  };
}

async function storeFor(backend: Backend): Promise<Store> {
  const description = backend.line.replace(/^store: /, "");
  return backend.kind === "etcd" ? new EtcdStore(backend.endpoints!, description) : new MemoryStore(description);
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}

/** The etcd belongs to the user: keys a run writes there must be deleted when the run ends. */
function usersEtcd(backend: Backend): boolean {
  return backend.kind === "etcd" && (backend.source === "ETCD_ENDPOINTS" || backend.source === "endpoints");
}

/** Prefixes get a trailing slash, so /apisix-1 never takes /apisix-10's keys with it. */
function forgetter(backend: Backend, store: () => Store): (prefix: string) => Promise<void> {
  if (!usersEtcd(backend)) return async () => undefined;
  return async (prefix) => {
    const s = store();
    if (s instanceof EtcdStore) await s.deletePrefix(prefix.endsWith("/") ? prefix : `${prefix}/`);
  };
}

/** Provision a store for one user; prints exactly one "store: ..." line. */
export async function acquireStore(opts: AcquireOptions = {}): Promise<ProvisionedStore> {
  const backend = await provisionBackend(opts);
  (opts.log ?? defaultLog)(backend.line);
  let store: Store;
  try {
    store = await storeFor(backend);
  } catch (err) {
    await backend.stop();
    throw err;
  }
  const provisioned: ProvisionedStore = {
    store,
    kind: backend.kind,
    source: backend.source,
    reason: backend.reason,
    startMs: backend.startMs,
    release: once(async () => {
      try {
        await store.close();
      } finally {
        await backend.stop();
      }
    }),
    forgetPrefix: forgetter(backend, () => store),
  };
  if (backend.endpoints) provisioned.endpoints = backend.endpoints;
  return provisioned;
}

/**
 * acquireStore, plus `started`: settles as soon as the store is on its way (a local etcd spawned)
 * or ready or failed, so that a command can load its own code while etcd boots instead of before.
 */
export function startStore(opts: AcquireOptions = {}): { started: Promise<void>; ready: Promise<ProvisionedStore> } {
  let started!: () => void;
  const startedPromise = new Promise<void>((resolve) => (started = resolve));
  const ready = acquireStore({
    ...opts,
    onSpawned: () => {
      opts.onSpawned?.();
      started();
    },
  });
  ready.then(started, started);
  return { started: startedPromise, ready };
}

// ---- one etcd per process ---------------------------------------------------------------

export interface SharedStoreLease extends ProvisionedStore {
  /** A key prefix of this caller's own (no other lease's prefix starts with it). */
  prefix: string;
}

let shared: { backend: Promise<Backend>; refs: number } | undefined;
let leaseCounter = 0;
let memoryLineLogged = false;

function uniquePrefix(base: string): string {
  // The fixed-width random tail keeps any one prefix from being a prefix of another
  // ("/x/1-1-…" vs "/x/1-10-…"), so prefix ranges of two runs never overlap.
  return `${base}/${process.pid}-${++leaseCounter}-${randomBytes(4).toString("hex")}`;
}

/**
 * A store on the process's shared etcd: the first caller provisions it (and prints the line),
 * later callers reuse it. Each lease has its own client (so restart()/close() of one run do not
 * break another's watches) and its own key prefix. The etcd is stopped when the last lease is
 * released (and on process exit in any case). Note compaction is global to the shared etcd.
 * With prefer "memory" (or when no etcd can be had) every lease gets its own MemoryStore.
 */
export async function sharedStore(opts: AcquireOptions & { prefixBase?: string } = {}): Promise<SharedStoreLease> {
  const prefix = uniquePrefix(opts.prefixBase ?? "/harness");
  if (opts.prefer === "memory") {
    const backend = await provisionBackend(opts);
    if (!memoryLineLogged) {
      memoryLineLogged = true;
      (opts.log ?? defaultLog)(backend.line);
    }
    const store = await storeFor(backend);
    return { store, kind: "memory", source: "memory", reason: backend.reason, startMs: 0, prefix, release: once(() => store.close()), forgetPrefix: async () => undefined };
  }

  if (!shared) {
    const backend = provisionBackend(opts);
    shared = { backend, refs: 0 };
    void backend.then(
      (b) => (opts.log ?? defaultLog)(b.line),
      () => undefined,
    );
  }
  const entry = shared;
  entry.refs++;
  let backend: Backend;
  try {
    backend = await entry.backend;
  } catch (err) {
    // Provisioning failed (e.g. ETCD_ENDPOINTS dead): let the next caller try again.
    if (--entry.refs === 0 && shared === entry) shared = undefined;
    throw err;
  }
  let store: Store;
  try {
    store = await storeFor(backend);
  } catch (err) {
    if (--entry.refs === 0 && shared === entry) {
      shared = undefined;
      await backend.stop();
    }
    throw err;
  }
  const lease: SharedStoreLease = {
    store,
    kind: backend.kind,
    source: backend.source,
    reason: backend.reason,
    startMs: backend.startMs,
    prefix,
    release: once(async () => {
      try {
        await store.close();
      } finally {
        if (--entry.refs === 0) {
          if (shared === entry) shared = undefined;
          await backend.stop();
        }
      }
    }),
    forgetPrefix: forgetter(backend, () => store),
  };
  if (backend.endpoints) lease.endpoints = backend.endpoints;
  return lease;
}


/**
 * A store per run on what was provisioned: a new etcd client (own connection, own watches) on the
 * same etcd, or a fresh in-memory store. An etcd restart in one run then breaks only that run's
 * watches, as it would for one gateway.
 */
export function storePerRun(provisioned: ProvisionedStore): () => Store {
  if (provisioned.kind === "etcd" && provisioned.endpoints) {
    const endpoints = provisioned.endpoints;
    return () => new EtcdStore(endpoints, provisioned.store.description);
  }
  return () => new MemoryStore("in-memory store (per run)");
}
