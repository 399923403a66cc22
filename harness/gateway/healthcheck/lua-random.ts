import type { TableOrder } from "../engine.ts";

/**
 * What a worker leaves to chance, decided by the run's seed: `math.random` (the active-check
 * timer's jitter, the round-robin picker's start, the DNS answer a request uses) and the order in
 * which `pairs()` walks a table with string keys (the manager's pools). `math.random` is LuaJIT's
 * own generator, seeded as the lua engine's workers seed theirs (`math.randomseed(seed * 1000 +
 * worker)`), so both engines draw the same numbers where they draw in the same order. LuaJIT's
 * string hashes are not reproduced (see HashOrder).
 */
export class LuaRandom {
  /** The four 64-bit LFSR states of LuaJIT's Tausworthe generator (period 2^223). */
  private readonly gen: bigint[] = [0n, 0n, 0n, 0n];
  private static readonly bits = new DataView(new ArrayBuffer(8));

  /** math.randomseed(seed): LuaJIT 2.1's src/lib_math.c random_seed, then ten steps. */
  constructor(seed: number) {
    let d = seed;
    for (let i = 0; i < 4; i++) {
      // Each state gets its own 64-k[i] low bit set, so the generator never sticks at zero.
      const min = 1n << BigInt(SHIFTS[i]!.low);
      d = d * Math.PI + Math.E;
      let u = LuaRandom.toBits(d);
      if (u < min) u += min;
      this.gen[i] = u;
    }
    for (let i = 0; i < 10; i++) this.step();
  }

  private static toBits(d: number): bigint {
    LuaRandom.bits.setFloat64(0, d);
    return LuaRandom.bits.getBigUint64(0);
  }

  /** One step of the four generators (src/lj_prng.c TW223_STEP): a double in [1, 2) from the xor of their states. */
  private step(): number {
    let r = 0n;
    for (let i = 0; i < 4; i++) {
      const { k, q, s } = SHIFTS[i]!;
      const z = this.gen[i]!;
      const next = ((((z << BigInt(q)) & MASK64) ^ z) >> BigInt(k - s)) ^ (((z & ((MASK64 << BigInt(64 - k)) & MASK64)) << BigInt(s)) & MASK64);
      this.gen[i] = next;
      r ^= next;
    }
    LuaRandom.bits.setBigUint64(0, (r & 0x000fffffffffffffn) | 0x3ff0000000000000n);
    return LuaRandom.bits.getFloat64(0);
  }

  /** math.random(): a float in [0, 1). */
  random(): number {
    return this.step() - 1;
  }

  /** math.random(m, n): an integer in [m, n]; math.random(n) is int(1, n). */
  int(m: number, n: number): number {
    return Math.floor(this.random() * (n - m + 1)) + m;
  }
}

const MASK64 = (1n << 64n) - 1n;
/** L'Ecuyer's ME-CF generator (L=64, J=4, k=223) as LuaJIT parameterises it: k, q, s per state. */
const SHIFTS = [
  { k: 63, q: 31, s: 18, low: 1 },
  { k: 58, q: 19, s: 28, low: 6 },
  { k: 55, q: 24, s: 7, low: 9 },
  { k: 47, q: 21, s: 8, low: 17 },
] as const;

/**
 * The order `pairs()` visits string keys in. `hash` (LuaJIT's): fixed for a given seed (nginx
 * workers share the hash seed), unrelated to insertion order. Keys are hashed without `prefix` (the run's etcd prefix),
 * so the same seed gives the same order whatever prefix a run got. LuaJIT's order cannot be
 * reproduced: in OpenResty's luajit2 the order of the same keys, inserted the same way, moves
 * with the strings the worker created (and the garbage collector freed) before them; creating a
 * few other strings first is enough to change it. `sorted`: key order, as the lua engine's
 * runtime/key_order.lua walks every table in such a run (byte order of the keys, which for the
 * ASCII keys these tables hold is JavaScript's `<`).
 */
export class HashOrder {
  private readonly hashes = new Map<string, number>();

  constructor(
    private readonly seed: number,
    private readonly prefix = "",
    private readonly order: TableOrder = "hash",
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
    if (out.length > 1 && this.order === "sorted") out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    else if (out.length > 1) out.sort((a, b) => this.hash(a[0]) - this.hash(b[0]) || (a[0] < b[0] ? -1 : 1));
    return out;
  }
}
