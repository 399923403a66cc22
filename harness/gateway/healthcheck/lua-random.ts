/**
 * What a worker leaves to chance, decided by the run's seed: `math.random` (the active-check
 * timer's jitter, the round-robin picker's start, the DNS answer a request uses) and the order in
 * which `pairs()` walks a table with string keys (the manager's pools). LuaJIT's own generator
 * and string hashes are not reproduced: the model draws from its own stream, the same for the
 * same seed, so a run replays exactly and another seed explores another order.
 */
export class LuaRandom {
  private state: number;

  constructor(seed: number) {
    this.state = (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) >>> 0) || 1;
  }

  /** math.random(): a float in [0, 1). mulberry32. */
  random(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** math.random(m, n): an integer in [m, n]; math.random(n) is int(1, n). */
  int(m: number, n: number): number {
    return m + Math.floor(this.random() * (n - m + 1));
  }
}

/**
 * The order `pairs()` visits string keys in: fixed for a given seed (nginx workers share the hash
 * seed), unrelated to insertion order. Keys are hashed without `prefix` (the run's etcd prefix),
 * so the same seed gives the same order whatever prefix a run got.
 */
export class HashOrder {
  private readonly hashes = new Map<string, number>();

  constructor(
    private readonly seed: number,
    private readonly prefix = "",
  ) {}

  private hash(key: string): number {
    let h = this.hashes.get(key);
    if (h !== undefined) return h;
    const from = this.prefix && key.startsWith(this.prefix) ? this.prefix.length : 0;
    // FNV-1a over the seed and the key.
    h = 0x811c9dc5 ^ this.seed;
    for (let i = from; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    h >>>= 0;
    if (this.hashes.size >= 4096) this.hashes.clear();
    this.hashes.set(key, h);
    return h;
  }

  /** A map's entries in this order (a snapshot: the map may change while the caller walks it). */
  entries<V>(map: ReadonlyMap<string, V>): [string, V][] {
    const out = [...map];
    if (out.length > 1) out.sort((a, b) => this.hash(a[0]) - this.hash(b[0]) || (a[0] < b[0] ? -1 : 1));
    return out;
  }
}
