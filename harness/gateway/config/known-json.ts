/**
 * The last text this process made with JSON.stringify and wrote under each store key (the Admin
 * API's writes). Such a text is valid JSON, so the config cache may decode it only when someone
 * reads the route (under half of the objects a lifecycle run builds are ever read; decoding them
 * all was 5% of it) and still know at once that it will not have to log a decode failure. Texts
 * from anyone else (a user's etcd, another writer) are not known and are decoded at once.
 * Remembered by key, so that telling a text is known is a pointer comparison, not a hash of it.
 */
const known = new Map<string, string>();
/** A bound on the keys remembered: a text that dropped out is only decoded at once again. */
const MAX_KNOWN = 1024;

export function rememberWellFormed(key: string, text: string): void {
  if (known.size >= MAX_KNOWN && !known.has(key)) known.clear();
  known.set(key, text);
}

/** Whether `text` is what this process last wrote as JSON under `key` (the same text, however it came back). */
export function isKnownWellFormed(key: string, text: string): boolean {
  return known.get(key) === text;
}
