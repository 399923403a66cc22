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
  /**
   * The four 64-bit LFSR states of LuaJIT's Tausworthe generator (period 2^223), as high and low
   * 32-bit halves (state i in [2i] high, [2i+1] low): plain number arithmetic, where BigInt
   * allocated on every step (a request's DNS pick and every world's seeding draw from here).
   */
  private readonly gen = new Uint32Array(8);
  private static readonly bits = new DataView(new ArrayBuffer(8));

  /** math.randomseed(seed): LuaJIT 2.1's src/lib_math.c random_seed, then ten steps. */
  constructor(seed: number) {
    let d = seed;
    for (let i = 0; i < 4; i++) {
      // Each state gets its own 64-k[i] low bit set, so the generator never sticks at zero.
      const min = 2 ** SHIFTS[i]!.low;
      d = d * Math.PI + Math.E;
      LuaRandom.bits.setFloat64(0, d);
      const hi = LuaRandom.bits.getUint32(0);
      let lo = LuaRandom.bits.getUint32(4);
      // u < min (min < 2^32) only when the high half is 0; adding min then cannot carry.
      if (hi === 0 && lo < min) lo += min;
      this.gen[2 * i] = hi;
      this.gen[2 * i + 1] = lo;
    }
    for (let i = 0; i < 10; i++) this.step();
  }

  /** One step of the four generators (src/lj_prng.c TW223_STEP): a double in [1, 2) from the xor of their states. */
  private step(): number {
    const g = this.gen;
    let rHi = 0;
    let rLo = 0;
    for (let i = 0; i < 4; i++) {
      const { k, q, s } = SHIFTS[i]!;
      const zHi = g[2 * i]!;
      const zLo = g[2 * i + 1]!;
      // a = ((z << q) ^ z) >> (k - s), 64-bit; q < 32 and 0 < k - s < 64.
      let aHi = ((zHi << q) | (zLo >>> (32 - q))) ^ zHi;
      let aLo = (zLo << q) ^ zLo;
      const r = k - s;
      if (r >= 32) {
        aLo = aHi >>> (r - 32);
        aHi = 0;
      } else {
        aLo = (aLo >>> r) | (aHi << (32 - r));
        aHi = aHi >>> r;
      }
      // b = (z & (~0 << (64 - k))) << s: the top k bits of z, shifted left by s (s < 32).
      const m = 64 - k;
      let mHi = zHi;
      let mLo = zLo;
      if (m >= 32) {
        mHi = zHi & (~0 << (m - 32));
        mLo = 0;
      } else mLo = zLo & (~0 << m);
      const bHi = (mHi << s) | (mLo >>> (32 - s));
      const bLo = mLo << s;
      const nHi = (aHi ^ bHi) >>> 0;
      const nLo = (aLo ^ bLo) >>> 0;
      g[2 * i] = nHi;
      g[2 * i + 1] = nLo;
      rHi ^= nHi;
      rLo ^= nLo;
    }
    // The low 52 bits as the fraction of a double in [1, 2): exact in a double.
    return 1 + ((rHi & 0xfffff) * 4294967296 + (rLo >>> 0)) / 4503599627370496;
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
