import type { ConfigItem } from "../config/config-cache.ts";

/** Whether a route's uri pattern matches a path: exact, or a prefix when it ends with `*`. */
export function uriMatches(pattern: string, path: string): boolean {
  return pattern.endsWith("*") ? path.startsWith(pattern.slice(0, -1)) : pattern === path;
}

/**
 * Find the route for a request, as APISIX's radixtree router does for the parts used here:
 * exact matches beat prefix matches, longer prefixes beat shorter ones, then higher `priority`.
 */
export function matchRoute(routes: readonly ConfigItem[], method: string, pathWithQuery: string): ConfigItem | undefined {
  const path = pathWithQuery.split("?")[0]!;
  let best: { item: ConfigItem; score: number; priority: number } | undefined;
  for (const item of routes) {
    const v = item.value;
    if (v.status === 0) continue;
    if (Array.isArray(v.methods) && v.methods.length > 0 && !v.methods.includes(method.toUpperCase())) continue;
    const patterns = v.uris ?? (v.uri ? [v.uri] : []);
    for (const p of patterns) {
      if (!uriMatches(p, path)) continue;
      const score = p.endsWith("*") ? p.length - 1 : Number.MAX_SAFE_INTEGER;
      const priority = typeof v.priority === "number" ? v.priority : 0;
      if (!best || score > best.score || (score === best.score && priority > best.priority)) best = { item, score, priority };
    }
  }
  return best?.item;
}
