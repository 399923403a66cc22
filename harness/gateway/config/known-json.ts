/**
 * Texts this process made with JSON.stringify and wrote to the store (the Admin API's writes).
 * Such a text is valid JSON, so the config cache may decode it only when someone reads the route
 * (under half of the objects a lifecycle run builds are ever read; decoding them all was 5% of
 * it) and still know at once that it will not have to log a decode failure. Texts from anyone
 * else (a user's etcd, another writer) are not here and are decoded at once, as before.
 */
const known = new Set<string>();
/** A bound on what is remembered: a text that dropped out is only decoded at once again. */
const MAX_KNOWN = 1024;

export function rememberWellFormed(text: string): void {
  if (known.size >= MAX_KNOWN) known.clear();
  known.add(text);
}

export function isKnownWellFormed(text: string): boolean {
  return known.has(text);
}
