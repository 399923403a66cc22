/**
 * The whole SuiteResult as JSON: the machine-readable record of every run and step.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { SuiteResult } from "../runner/result.ts";

/**
 * Steps' `observed` values are `unknown`: checker state may hold Maps, Sets, bigints or Errors,
 * which plain JSON.stringify drops to `{}` or throws on. Turn them into plain data instead.
 */
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), v]));
  if (value instanceof Set) return [...value];
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

/** JSON text for any value the reports show; `indent` as for JSON.stringify. */
export function toJsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, replacer, indent) ?? String(value);
}

export function suiteJson(suite: SuiteResult): string {
  return toJsonText(suite, 2) + "\n";
}

export function writeJson(suite: SuiteResult, file: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, suiteJson(suite), "utf8");
}
