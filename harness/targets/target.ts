import type { BackendMode, BackendSpec } from "../backends/backend.ts";
import type { ReceivedRequest } from "../backends/pool.ts";
import type { CheckerView, GatewayVersion, Injection, PluginCall, PluginCallResult, PoolsView } from "../gateway/engine.ts";
import type { EtcdAction } from "../gateway/gateway.ts";
import type { LogLevel } from "../gateway/log/error-log.ts";
import type { TraceEvent } from "../gateway/trace.ts";

/** An HTTP answer as a scenario sees it. */
export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** An Admin API write's store revision, where the target knows it (APISIX's answer does not say). */
  revision?: number;
}

export interface ObservedLogLine {
  /** ms since the epoch on the target's clock (parsed from the line for external targets). */
  time: number;
  level: LogLevel | string;
  text: string;
}

/** The `health` step: a route instance's checker target, named by address, backend or host name. */
export interface HealthSetting {
  route: string;
  instance: number;
  /** An IP literal, a backend name or a host name (its first address). */
  node: string;
  port: number;
  hostname?: string;
  healthy: boolean;
}

/**
 * Anything that speaks the Admin API and the data plane and has an error log: the in-process
 * reference gateway, the reference gateway as a `serve` process, or an external APISIX.
 * Scenarios are written against this and run on any of them.
 */
export interface Target {
  readonly kind: "inproc" | "serve" | "external";
  /** A line describing the target (version, store, addresses). */
  readonly description: string;
  /** Admin API call; returns once the gateway's config has caught up with the write. */
  admin(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<HttpResult>;
  /** Data-plane call, to the given worker (0-based) or the next one in turn. */
  request(method: string, path: string, headers: Record<string, string>, body: string, worker?: number): Promise<HttpResult>;
  /** Let time pass: virtual time in process, real time elsewhere. An abort ends the wait early (rejects). */
  wait(ms: number, signal?: AbortSignal): Promise<void>;
  /** The target's clock, ms since the epoch. */
  now(): number;
  logLines(): Promise<ObservedLogLine[]>;
  /** The working checkers and their targets (the harness's own view; TargetUnsupported where there is none). */
  checkers(): Promise<CheckerView[]>;
  /** Waiting and working pools (reference gateway only; undefined elsewhere). */
  pools(): Promise<PoolsView | undefined>;
  /** Mock backends the scenario defined. */
  setBackend(name: string, mode: BackendMode): Promise<void>;
  /** etcd actions; targets that cannot do them throw TargetUnsupported. */
  etcd(action: EtcdAction): Promise<void>;
  /** Every request the mock backends received, oldest first. */
  received(): Promise<ReceivedRequest[]>;
  /** The address an entry names: an address is itself, a backend its address, a host name its first address. */
  addressOf(entry: string): Promise<string>;
  /** A name's addresses from now on; entries are loopback addresses or backend names. */
  dns(name: string, entries: string[]): Promise<void>;
  /** Replace a function of the code under test; `restore` puts it back. */
  inject(injection: Injection): Promise<void>;
  restore(module: string, fn: string): Promise<void>;
  /** A target's health in the shared health store, as another worker would set it. */
  setHealth(h: HealthSetting): Promise<void>;
  /** Call a function of the code under test directly. */
  call(c: PluginCall): Promise<PluginCallResult[]>;
  /**
   * When the health-check manager's timers next run, ms on the target's clock (a `tick` step
   * moves to just before or after it). Only a virtual clock can stop there to the millisecond:
   * elsewhere TargetUnsupported.
   */
  nextTick(): Promise<number>;
  /** The run's timeline on the target's clock, where the target records one (in process). */
  timeline?(): Promise<TraceEvent[] | undefined>;
  close(): Promise<void>;
}

export class TargetUnsupported extends Error {}

export interface TargetSetup {
  backends: BackendSpec[];
  /** Extra host -> loopback address entries. */
  hosts?: Record<string, string | string[]>;
}

/** What a target needs of a scenario to build its world. */
export interface TargetWorld {
  backends: BackendSpec[];
  hosts: Record<string, string | string[]>;
  /** nginx worker processes (a scenario's `workers:`); default: the factory's. */
  workers?: number;
  /** The error log's level (a scenario's `log_level:`); default warn, as APISIX's config. */
  logLevel?: LogLevel;
}

/** Makes a fresh target for one scenario x version run. */
export interface TargetFactory {
  readonly name: string;
  /** Which store the runs use, for reports. */
  readonly store: string;
  /** The target runs on real time (its waits take as long as they say). */
  readonly realTime?: boolean;
  /** `signal` ends the run early: creation gives up, and the target's calls and waits end. */
  create(world: TargetWorld, version: GatewayVersion, runId: number, seed: number, signal?: AbortSignal): Promise<{ target: Target; prefix: string }>;
}
