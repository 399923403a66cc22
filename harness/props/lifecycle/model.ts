/**
 * The lifecycle model (what the configuration is, what was asked of the gateway and when) and
 * the "real" side (the gateway under test plus what the invariants remember between steps).
 */
import type { EtcdAction } from "../../gateway/gateway.ts";
import type { Instance } from "../../gateway/plugins/ai-proxy-multi/types.ts";
import type { InprocTarget } from "../../targets/inproc.ts";
import type { BackendName } from "./world.ts";

export interface RouteModel {
  /** The instances as last written (unique names, no runtime fields). */
  instances: Instance[];
  /** Which backend each instance points at. */
  backends: BackendName[];
  desc?: string;
  /** Model time (ms since the start) of the last write that replaced this route's object. */
  lastWrite: number;
  /** Model time of the last Request to this route (-Infinity: none). */
  lastRequest: number;
  /** Command numbers of the last write and the last request, to order them within one instant. */
  writeSeq: number;
  requestSeq: number;
}

export interface LifecycleModel {
  /** ms since the start of the sequence (the gateway's virtual clock moves only on Advance). */
  now: number;
  routes: Map<string, RouteModel>;
  /** Backends that are down, with the model time they went down. */
  down: Map<BackendName, number>;
  /** Model time of the last config change of any route (write, delete, etcd restart). */
  lastConfigChange: number;
  /** Deleted route ids (not re-created since), with the model time of the delete. */
  deleted: Map<string, number>;
  /** Counter for unique instance names. */
  names: number;
  /** Commands run so far. */
  seq: number;
}

export function initialModel(): LifecycleModel {
  return { now: 0, routes: new Map(), down: new Map(), lastConfigChange: -Infinity, deleted: new Map(), names: 0, seq: 0 };
}

/** One thing done to the gateway, as a scenario step would say it. */
export type RecordedStep =
  | { kind: "admin"; method: "PUT" | "PATCH" | "DELETE"; path: string; body?: unknown; status: number }
  | { kind: "request"; method: "POST"; path: string; body: unknown; status: number }
  | { kind: "wait"; ms: number }
  | { kind: "backend"; name: BackendName; mode: "healthy" | "down" }
  | { kind: "etcd"; action: EtcdAction };

/** One line per step, e.g. `PATCH /apisix/admin/routes/1 {"desc":"x"}`, `advance 3000 ms`. */
export function describeStep(s: RecordedStep): string {
  switch (s.kind) {
    case "admin":
      return `${s.method} ${s.path}${s.body === undefined ? "" : ` ${JSON.stringify(s.body)}`}`;
    case "request":
      return `${s.method} ${s.path}`;
    case "wait":
      return `advance ${s.ms} ms`;
    case "backend":
      return `backend ${s.name} ${s.mode}`;
    case "etcd":
      return `etcd ${s.action}`;
  }
}

/** A broken invariant, with what a scenario needs to assert it. */
export type Violation =
  | { invariant: 1; kind: "crash"; line: string }
  | { invariant: 2; kind: "missing" | "stale" | "leftover"; route: string; instance: number; detail: string }
  | { invariant: 3; kind: "not-unhealthy"; route: string; instance: number; backend: BackendName; detail: string };

export function describeViolation(v: Violation): string {
  switch (v.invariant) {
    case 1:
      return `invariant 1 (no timer crash): ${v.line}`;
    case 2:
      return `invariant 2 (settled checkers): ${v.detail}`;
    case 3:
      return `invariant 3 (down backend seen unhealthy): ${v.detail}`;
  }
}

/** Thrown by a command when an invariant breaks; fast-check shrinks on it. */
export class LifecycleViolation extends Error {
  constructor(readonly violation: Violation) {
    super(describeViolation(violation));
  }
}

/** The model refused by the gateway: a bug in the generators, not in the gateway. */
export class InvalidCommand extends Error {}

export interface LifecycleReal {
  target: InprocTarget;
  /** etcd key prefix of this sequence's gateway. */
  prefix: string;
  /** Each route's modifiedIndex as the Admin API answered it. */
  modifiedIndex: Map<string, number>;
  /** How many error-log lines the invariants have read. */
  logCursor: number;
  /** `checker|ip:port` -> model time the target was first seen on a current checker. */
  seen: Map<string, number>;
  steps: RecordedStep[];
}
