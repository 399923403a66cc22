import type { BackendMode, BackendSpec } from "../backends/backend.ts";
import type { Injection, PluginCall } from "../gateway/engine.ts";
import type { LogLevel } from "../gateway/log/error-log.ts";
import type { HealthSetting } from "../targets/target.ts";
import type { EtcdAction } from "../gateway/gateway.ts";
import type { Expectation } from "./result.ts";

/** A checker or pool entry named the way a scenario author thinks of it: route id and instance index. */
export interface InstanceRef {
  route: string;
  instance: number;
}

/** Which window to look in, and how many matching items it must hold (default: at least one). */
export interface CountedWindow {
  /** Window start: a mark name (default: the start of the run). */
  since?: string;
  /** Window end: a mark name (what came before that mark). Default: up to now. */
  until?: string;
  /** Window length from `since`, e.g. "3s". Default: up to now. */
  within?: number;
  count?: number;
  atLeast?: number;
  atMost?: number;
  /** No matching item in the window. */
  absent?: boolean;
}

export interface LogAssertion extends CountedWindow {
  /** Substring the line must contain. */
  contains?: string;
  /** Regular expression the line must match (JavaScript syntax). */
  matches?: string;
  /** Minimum level (error, warn, ...). */
  level?: string;
  /**
   * Every health-check manager tick in the window has exactly this many matching lines (a tick's
   * lines: from its time up to the next tick's). Instead of count/atLeast/atMost/absent.
   */
  perTick?: number;
}

/** One JSONPath check on a JSON document: the path, and one thing said of the value there. */
export interface JsonCheck {
  path: string;
  /** The value (one match) or the list of values (several) is this, deeply. */
  equals?: unknown;
  /** The value (a string, or JSON text for anything else) contains / matches this. */
  contains?: string;
  matches?: string;
  /** The path matches something (true) or nothing (false). */
  exists?: boolean;
}

/** What a response body must show: text, a regular expression, JSONPath checks. */
export interface BodyChecks {
  bodyContains?: string;
  bodyMatches?: string;
  json?: JsonCheck[];
}

/** Requests the mock backends received, filtered, counted in a window (as log assertions). */
export interface ReceivedAssertion extends CountedWindow {
  backend?: string;
  kind?: "probe" | "chat";
  method?: string;
  /** The path without the query, exactly. */
  path?: string;
  /** These query arguments, exactly (others may be there too). */
  query?: Record<string, string>;
  /** These headers (names in any case), exactly. */
  headers?: Record<string, string>;
  body?: string;
  bodyContains?: string;
  bodyMatches?: string;
}

/** What a `call` step must see: an error raised or returned, and JSONPath checks on {result, error, raised, arg}. */
export interface CallChecks {
  raises?: string;
  error?: string;
  json?: JsonCheck[];
}

/**
 * A target a checker probes: `node:port`, or `hostname(node:port)` to say its hostname too. The
 * node is an address, a backend's name or a host name the scenario knows (its first address).
 */
export interface CheckerTarget {
  node: string;
  port: number;
  hostname?: string;
  /** As written. */
  text: string;
}

export interface CheckerAssertion extends InstanceRef {
  /** A working checker exists for this instance (default true). */
  exists?: boolean;
  /** The checker's version is the route's current modifiedIndex (plus nodes version). */
  current?: boolean;
  /** How many of its nodes are healthy / unhealthy. */
  healthy?: number;
  unhealthy?: number;
  /** The working checker is the very checker that worked for this instance at the mark. */
  keptSince?: string;
  /** The working checker is another one than worked for this instance at the mark. */
  rebuiltSince?: string;
  /** Exactly these targets, in any order. */
  targets?: CheckerTarget[];
}

/**
 * A pool entry's version: `current` (the route's modifiedIndex, followed by a nodes version where
 * DNS bumped one), `stale` (anything else), or exactly this text.
 */
export type PoolVersion = { kind: "current" } | { kind: "stale" } | { kind: "exactly"; version: string };

export interface PoolEntry extends InstanceRef {
  version?: PoolVersion;
}

export interface PoolsAssertion {
  /** Exactly these entries are in the waiting / working pool (and at these versions, where given). */
  waiting?: PoolEntry[];
  working?: PoolEntry[];
}

export interface Assertion {
  /** Part of the bug's signature: a run reproduces when every bug assertion holds. */
  bug: boolean;
  /** Only check this on versions expected to show this (a plain check otherwise applies to all). */
  when?: Expectation | { versions: string[] };
  note?: string;
  log?: LogAssertion;
  checkers?: CheckerAssertion[];
  pools?: PoolsAssertion;
  received?: ReceivedAssertion;
}

export type Step =
  | ({ kind: "admin"; line: number; method: string; path: string; body?: string; expectStatus?: number } & BodyChecks)
  | {
      kind: "request";
      line: number;
      method: string;
      path: string;
      headers: Record<string, string>;
      body: string;
      expectStatus?: number;
      bodyContains?: string;
      bodyMatches?: string;
      json?: JsonCheck[];
      /** Name of the ai-proxy-multi instance that must have answered. */
      instance?: string;
      /** The worker that handles it (0-based); default: round robin. */
      worker?: number;
    }
  | { kind: "wait"; line: number; ms: number }
  | { kind: "backend"; line: number; name: string; mode: BackendMode }
  | { kind: "etcd"; line: number; action: EtcdAction }
  | { kind: "mark"; line: number; name: string }
  /**
   * Move the clock to `offsetMs` from the `nth` next health-check manager tick (negative: before
   * it, the tick has not run; 0 or more: after it, it has).
   */
  | { kind: "tick"; line: number; nth: number; offsetMs: number }
  /** `entries`: loopback addresses or backend names, in answer order. */
  | { kind: "dns"; line: number; name: string; entries: string[] }
  | { kind: "inject"; line: number; injection: Injection }
  | { kind: "restore"; line: number; module: string; function: string }
  | { kind: "health"; line: number; setting: HealthSetting }
  | { kind: "call"; line: number; call: PluginCall; checks: CallChecks; bug: boolean; when?: Assertion["when"]; note?: string }
  | { kind: "assert"; line: number; assertion: Assertion };

export interface Scenario {
  file: string;
  name: string;
  issue?: string;
  tags: string[];
  description?: string;
  hosts: Record<string, string | string[]>;
  backends: BackendSpec[];
  /** nginx worker processes; undefined: the command line's --workers. */
  workers?: number;
  /** The error log's level (`log_level:`); undefined: warn, APISIX's default. */
  logLevel?: LogLevel;
  steps: Step[];
  /** Expectation per version; `default` for the rest. */
  expect: Record<string, Expectation>;
}

/**
 * A version name as expectations key it: a patched version by its base and the patch files'
 * names (`3.16.0+../fixes/13322.diff` -> `3.16.0+13322.diff`).
 */
export function expectationKey(version: string): string {
  const [base, ...patches] = version.split("+");
  return [base, ...patches.map((p) => p.split("/").pop()!)].join("+");
}

export function expectationFor(s: Scenario, version: string): Expectation {
  return s.expect[version] ?? s.expect[expectationKey(version)] ?? s.expect.default ?? "passes";
}
