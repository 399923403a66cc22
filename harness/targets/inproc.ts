import { readFileSync } from "node:fs";
import { LoopbackBackends, SimulatedBackends, type BackendPool } from "../backends/pool.ts";
import type { BackendMode } from "../backends/backend.ts";
import { VirtualClock } from "../gateway/clock/virtual-clock.ts";
import type { Store } from "../gateway/config/store.ts";
import { Gateway, type EtcdAction } from "../gateway/gateway.ts";
import type { LogLevel } from "../gateway/log/error-log.ts";
import { Resolver } from "../gateway/resolver/resolver.ts";
import type { GatewayVersion } from "../gateway/engine.ts";
import { TimelineRecorder, type TraceEvent } from "../gateway/trace.ts";
import type { HealthSetting, HttpResult, ObservedLogLine, Target, TargetSetup, TargetWorld } from "./target.ts";
import type { CheckerView, PoolsView } from "../gateway/gateway.ts";
import type { ReceivedRequest } from "../backends/pool.ts";
import type { Injection, PluginCall, PluginCallResult } from "../gateway/engine.ts";

export const DEFAULT_HOSTS_FILE = new URL("../../fixtures/hosts.json", import.meta.url);

let hostsCache: Record<string, string> | undefined;

/** The provider hosts of fixtures/hosts.json (read once: a gateway is created per run). */
export function defaultHosts(): Record<string, string> {
  hostsCache ??= JSON.parse(readFileSync(DEFAULT_HOSTS_FILE, "utf8")) as Record<string, string>;
  return { ...hostsCache };
}

/**
 * The resolver of the default hosts plus a run's own, by those hosts: property runs make a target
 * per sequence with the same hosts, and checking every address again was 2% of their time. Each
 * target gets a clone.
 */
const resolvers = new Map<string, Resolver>();

function resolverFor(hosts: Record<string, string | string[]> | undefined): Resolver {
  const key = JSON.stringify(hosts ?? {});
  let base = resolvers.get(key);
  if (!base) {
    base = new Resolver({ ...defaultHosts(), ...(hosts ?? {}) });
    if (resolvers.size >= 64) resolvers.clear();
    resolvers.set(key, base);
  }
  return base.clone();
}

export interface InprocOptions extends TargetSetup {
  version: GatewayVersion;
  store: Store;
  /** Where this run's keys live in the store (its own namespace on a shared etcd); the gateway shows /apisix. */
  prefix?: string;
  /** Real HTTP backends on loopback (default) or in-memory ones (property runs). */
  network?: "loopback" | "simulated";
  logLevel?: LogLevel;
  logFile?: string;
  startMs?: number;
  /** Close the store with the target (it was made for this target alone). */
  ownsStore?: boolean;
  seed?: number;
  workers?: number;
  /** Record the run's timeline (for the HTML report); off for high-volume property runs. */
  trace?: boolean;
  /** Called last by close() (e.g. to delete the run's keys from a user's etcd). */
  afterClose?: () => Promise<void>;
}

function result(r: { status: number; headers: Record<string, string>; body: string }): HttpResult {
  return { status: r.status, headers: r.headers, body: r.body };
}

/**
 * The reference gateway in this process, on a virtual clock: waits are instant and every timer
 * (manager ticks, probes) runs in order, so a run is deterministic.
 */
export class InprocTarget implements Target {
  readonly kind = "inproc" as const;

  private constructor(
    readonly gateway: Gateway,
    readonly clock: VirtualClock,
    readonly backends: BackendPool,
    readonly store: Store,
    private readonly ownsStore: boolean,
    private readonly recorder: TimelineRecorder | undefined,
    private readonly afterClose?: () => Promise<void>,
  ) {}

  get description(): string {
    return `in-process reference gateway ${this.gateway.version.name} on ${this.gateway.engine.description} (virtual clock, ${this.store.kind} store, ${this.backends.kind} backends)`;
  }

  static async create(opts: InprocOptions): Promise<InprocTarget> {
    const clock = new VirtualClock(opts.startMs);
    const resolver = resolverFor(opts.hosts);
    const now = () => clock.now();
    const backends: BackendPool = opts.network === "simulated" ? new SimulatedBackends(resolver, now) : new LoopbackBackends(resolver, now);
    try {
      for (const b of opts.backends) await backends.add(b);
      const gwOpts: Parameters<typeof Gateway.start>[0] = {
        version: opts.version,
        store: opts.store,
        clock,
        transport: backends,
        resolver,
        // APISIX is configured with /apisix; the run's keys may live elsewhere in a shared etcd.
        prefix: "/apisix",
        storePrefix: opts.prefix ?? "/apisix",
        logLevel: opts.logLevel ?? "warn",
        seed: opts.seed ?? 1,
        workers: opts.workers ?? 1,
      };
      if (opts.logFile) gwOpts.logFile = opts.logFile;
      const recorder = opts.trace ? new TimelineRecorder() : undefined;
      if (recorder) gwOpts.trace = recorder;
      const gateway = await Gateway.start(gwOpts);
      return new InprocTarget(gateway, clock, backends, opts.store, opts.ownsStore ?? false, recorder, opts.afterClose);
    } catch (e) {
      await backends.close();
      if (opts.ownsStore) await opts.store.close();
      await opts.afterClose?.().catch(() => undefined);
      throw e;
    }
  }

  async admin(method: string, path: string, body = "", headers: Record<string, string> = {}): Promise<HttpResult> {
    const res = await this.gateway.handleAdmin({ method, path, headers: { "x-api-key": "edd1c9f034335f136f87ad84b625c8f1", ...headers }, body });
    if (res.revision === undefined) return result(res);
    await this.gateway.config.waitForRevision(res.revision);
    return { ...result(res), revision: res.revision };
  }

  async request(method: string, path: string, headers: Record<string, string>, body: string, worker?: number): Promise<HttpResult> {
    if (worker !== undefined && worker >= this.gateway.workers) throw new Error(`worker ${worker} does not exist: this gateway runs ${this.gateway.workers} worker(s)`);
    return result(await this.gateway.handleData({ method, path, headers, body }, worker));
  }

  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return this.clock.advance(ms, signal);
  }

  now(): number {
    return this.clock.now();
  }

  async logLines(): Promise<ObservedLogLine[]> {
    return this.gateway.log.lines.map((l) => ({ time: l.time, level: l.level, text: l.text }));
  }

  async nextTick(): Promise<number> {
    const next = await this.gateway.nextTick();
    if (next === undefined) throw new Error("the health-check manager has no timer armed: there is no next tick");
    return next;
  }

  async timeline(): Promise<TraceEvent[] | undefined> {
    return this.recorder ? [...this.recorder.events] : undefined;
  }

  async checkers(): Promise<CheckerView[]> {
    return this.gateway.checkers();
  }

  async pools(): Promise<PoolsView | undefined> {
    return this.gateway.pools();
  }

  setBackend(name: string, mode: BackendMode): Promise<void> {
    return this.backends.setMode(name, mode);
  }

  etcd(action: EtcdAction): Promise<void> {
    return this.gateway.etcd(action);
  }

  async received(): Promise<ReceivedRequest[]> {
    return this.backends.received();
  }

  async addressOf(entry: string): Promise<string> {
    return this.backends.addressOf(entry);
  }

  dns(name: string, entries: string[]): Promise<void> {
    return this.gateway.setDns(name, entries.map((e) => this.backends.addressOf(e)));
  }

  inject(i: Injection): Promise<void> {
    return this.gateway.inject(i);
  }

  restore(module: string, fn: string): Promise<void> {
    return this.gateway.restore(module, fn);
  }

  setHealth(h: HealthSetting): Promise<void> {
    const t: Parameters<Gateway["setTargetHealth"]>[2] = { ip: this.backends.addressOf(h.node), port: h.port, healthy: h.healthy };
    if (h.hostname !== undefined) t.hostname = h.hostname;
    return this.gateway.setTargetHealth(h.route, h.instance, t);
  }

  call(c: PluginCall): Promise<PluginCallResult[]> {
    return this.gateway.call(c);
  }

  async close(): Promise<void> {
    try {
      await this.gateway.stop();
      this.clock.stopAll();
      await this.backends.close();
      if (this.ownsStore) await this.store.close();
    } finally {
      await this.afterClose?.();
    }
  }
}

/**
 * Fresh in-process gateways, each with its own store handle (made by `storeForRun`, closed with
 * the run) under its own key prefix.
 */
export class InprocFactory {
  readonly name = "inproc";
  private readonly tag = `${process.pid}-${Date.now().toString(36)}`;
  /** Run ids restart with each suite; a factory that serves two suites (diff) still needs one prefix per run. */
  private made = 0;

  constructor(
    private readonly storeForRun: () => Store,
    /** Says which store, for reports. */
    readonly store: string,
    private readonly network: "loopback" | "simulated" = "loopback",
    private readonly workers = 1,
    /** Deletes a finished run's keys (a user's etcd keeps nothing of ours). */
    private readonly forgetPrefix?: (prefix: string) => Promise<void>,
  ) {}

  async create(world: TargetWorld, version: GatewayVersion, runId: number, seed = 1): Promise<{ target: Target; prefix: string }> {
    const prefix = `/apisix-${this.tag}-${++this.made}-${runId}`;
    const workers = world.workers ?? this.workers;
    const opts: InprocOptions = { version, store: this.storeForRun(), ownsStore: true, prefix, backends: world.backends, hosts: world.hosts, network: this.network, seed, workers, trace: true };
    if (world.logLevel) opts.logLevel = world.logLevel;
    const forget = this.forgetPrefix;
    if (forget) opts.afterClose = () => forget(prefix);
    const target = await InprocTarget.create(opts);
    return { target, prefix: target.gateway.prefix };
  }
}
