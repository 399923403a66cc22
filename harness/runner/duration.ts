/** Parse a duration: integer milliseconds, or "500ms", "2s", "1.5s", "1m". */
export function parseDuration(v: number | string): number {
  if (typeof v === "number") return v;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(v);
  if (!m) throw new Error(`bad duration "${v}"`);
  const n = Number(m[1]);
  return Math.round(m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000);
}
