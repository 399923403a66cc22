/**
 * JSONPath checks on a JSON document (an Admin API answer, a response body, a direct call's
 * result), with jsonpath-plus: the library APISIX-style paths (`$.value.plugins['ai-proxy-multi']`)
 * already go through in the manager.
 */
import { isDeepStrictEqual } from "node:util";
import { JSONPath } from "jsonpath-plus";
import type { JsonCheck } from "./scenario.ts";

const PREDICATES = ["equals", "contains", "matches", "exists"] as const;

/**
 * What is wrong with a check as written, if anything: exactly one predicate, a path jsonpath-plus
 * can read (it reads almost anything, so brackets and quotes are checked here), a valid pattern.
 */
export function jsonCheckProblem(c: JsonCheck): string | undefined {
  const given = PREDICATES.filter((p) => p in c);
  if (given.length !== 1) return `give one of ${PREDICATES.join(", ")} (got ${given.length ? given.join(", ") : "none"})`;
  let depth = 0;
  let quote: string | undefined;
  for (const ch of c.path) {
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "[") depth++;
    else if (ch === "]" && --depth < 0) break;
  }
  if (quote || depth !== 0) return `JSONPath ${c.path}: unbalanced ${quote ? "quote" : "brackets"}`;
  if (c.matches !== undefined) {
    try {
      new RegExp(c.matches);
    } catch (e) {
      return `bad regular expression: ${(e as Error).message}`;
    }
  }
  return undefined;
}

function text(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** The problems of each check that does not hold on `doc` (empty: all hold). */
export function runJsonChecks(doc: unknown, checks: JsonCheck[]): string[] {
  const problems: string[] = [];
  for (const c of checks) {
    const found = JSONPath({ path: c.path, json: doc as object, wrap: true }) as unknown[];
    if (c.exists !== undefined) {
      if ((found.length > 0) !== c.exists) problems.push(`${c.path}: ${found.length ? `is ${text(found.length === 1 ? found[0] : found).slice(0, 200)}` : "matches nothing"}, expected ${c.exists ? "a value" : "nothing"}`);
      continue;
    }
    if (found.length === 0) {
      problems.push(`${c.path}: matches nothing`);
      continue;
    }
    const value = found.length === 1 ? found[0] : found;
    const shown = text(value).slice(0, 200);
    if (c.equals !== undefined && !isDeepStrictEqual(value, c.equals)) problems.push(`${c.path} is ${shown}, expected ${text(c.equals)}`);
    if (c.contains !== undefined && !text(value).includes(c.contains)) problems.push(`${c.path} is ${shown}, expected it to contain "${c.contains}"`);
    if (c.matches !== undefined && !new RegExp(c.matches).test(text(value))) problems.push(`${c.path} is ${shown}, expected it to match /${c.matches}/`);
  }
  return problems;
}
