/**
 * The bodies of a serve process's /v1/harness/ steering endpoints (dns, inject, restore, health,
 * call), checked before anything acts on them: the runner sends them from a checked scenario, but
 * anyone can curl the control port. Each check gives the value or says what was wrong.
 */
import type { Injection, PluginCall } from "../gateway/engine.ts";
import type { HealthSetting } from "./target.ts";

type Checked<T> = T | { error: string };

function object(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

const isString = (v: unknown): v is string => typeof v === "string" && v.length > 0;
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 1_000_000;

function only(o: Record<string, unknown>, allowed: string[]): string | undefined {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  return extra.length ? `unknown field(s) ${extra.join(", ")} (expected ${allowed.join(", ")})` : undefined;
}

export function checkDns(v: unknown): Checked<{ name: string; entries: string[] }> {
  const o = object(v);
  if (!o) return { error: 'expected {"name": "...", "entries": ["127.0.0.x" or a backend name, ...]}' };
  const extra = only(o, ["name", "entries"]);
  if (extra) return { error: extra };
  if (!isString(o.name)) return { error: "name: expected a host name" };
  if (!Array.isArray(o.entries) || o.entries.length === 0 || !o.entries.every(isString)) return { error: "entries: expected a non-empty list of addresses or backend names" };
  return { name: o.name, entries: o.entries };
}

export function checkInjection(v: unknown): Checked<Injection> {
  const o = object(v);
  if (!o) return { error: 'expected {"module", "function", "raises" or "returns", "after"?}' };
  const extra = only(o, ["module", "function", "raises", "returns", "after"]);
  if (extra) return { error: extra };
  if (!isString(o.module) || !isString(o.function)) return { error: "module, function: expected names" };
  if ((o.raises === undefined) === (o.returns === undefined)) return { error: 'give "raises" or "returns", one of them' };
  const i: Injection = { module: o.module, function: o.function };
  if (o.raises !== undefined) {
    if (typeof o.raises !== "string") return { error: "raises: expected a message" };
    i.raises = o.raises;
  }
  if (o.returns !== undefined) {
    if (!Array.isArray(o.returns)) return { error: "returns: expected a list of values" };
    i.returns = o.returns;
  }
  if (o.after !== undefined) {
    if (!isCount(o.after)) return { error: "after: expected a whole number of calls" };
    i.after = o.after;
  }
  return i;
}

export function checkRestore(v: unknown): Checked<{ module: string; function: string }> {
  const o = object(v);
  if (!o || !isString(o.module) || !isString(o.function) || only(o, ["module", "function"])) return { error: 'expected {"module": "...", "function": "..."}' };
  return { module: o.module, function: o.function };
}

export function checkHealth(v: unknown): Checked<HealthSetting> {
  const o = object(v);
  if (!o) return { error: 'expected {"route", "instance", "node", "port", "hostname"?, "healthy"}' };
  const extra = only(o, ["route", "instance", "node", "port", "hostname", "healthy"]);
  if (extra) return { error: extra };
  if (!isString(o.route) || !isCount(o.instance)) return { error: "route, instance: expected a route id and an instance index" };
  if (!isString(o.node) || !Number.isInteger(o.port) || (o.port as number) < 1 || (o.port as number) > 65535) return { error: "node, port: expected an address, backend or host name and a port" };
  if (typeof o.healthy !== "boolean") return { error: "healthy: expected true or false" };
  if (o.hostname !== undefined && !isString(o.hostname)) return { error: "hostname: expected a name" };
  const h: HealthSetting = { route: o.route, instance: o.instance, node: o.node, port: o.port as number, healthy: o.healthy };
  if (o.hostname !== undefined) h.hostname = o.hostname as string;
  return h;
}

export function checkCall(v: unknown): Checked<PluginCall> {
  const o = object(v);
  if (!o) return { error: 'expected {"module", "function", "arg"?, "times"}' };
  const extra = only(o, ["module", "function", "arg", "times"]);
  if (extra) return { error: extra };
  if (!isString(o.module) || !isString(o.function)) return { error: "module, function: expected names" };
  if (!isCount(o.times) || o.times < 1 || o.times > 100) return { error: "times: expected 1 to 100" };
  const c: PluginCall = { module: o.module, function: o.function, times: o.times };
  if (o.arg !== undefined) c.arg = o.arg;
  return c;
}
