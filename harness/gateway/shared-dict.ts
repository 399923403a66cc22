import type { Clock } from "./clock/clock.ts";

/** A value as ngx.shared stores it: a string (possibly binary), a number or a boolean. */
export type SharedValue = { s: string } | { n: number } | { b: boolean };

interface Entry {
  value: SharedValue;
  /** ms on the clock; undefined: never expires. */
  expires?: number;
  flags?: number;
}

/**
 * One ngx.shared dict shared by every worker (nginx keeps it in shared memory): the
 * `upstream-healthcheck` dict is where lua-resty-healthcheck keeps targets' health, so a checker
 * rebuilt in any worker finds it. Expiry runs on the gateway's clock.
 */
export class SharedDict {
  private readonly data = new Map<string, Entry>();
  /** The caller's time for the operation in progress (a worker may run ahead of the clock). */
  private callerTime: number | undefined;

  constructor(
    readonly name: string,
    private readonly clock: Clock,
  ) {}

  private now(): number {
    return this.callerTime ?? this.clock.now();
  }

  /** Run operations at the caller's time (ms). */
  at<T>(time: number | undefined, fn: () => T): T {
    this.callerTime = time;
    try {
      return fn();
    } finally {
      this.callerTime = undefined;
    }
  }

  private live(key: string): Entry | undefined {
    const e = this.data.get(key);
    if (e && e.expires !== undefined && e.expires <= this.now()) {
      this.data.delete(key);
      return undefined;
    }
    return e;
  }

  private expiry(exptime: number | undefined): number | undefined {
    return exptime !== undefined && exptime > 0 ? this.now() + exptime * 1000 : undefined;
  }

  get(key: string): Entry | undefined {
    return this.live(key);
  }

  /** get_stale: the value even when it has expired (until something overwrites it). */
  getStale(key: string): { entry: Entry; stale: boolean } | undefined {
    const e = this.data.get(key);
    if (!e) return undefined;
    return { entry: e, stale: e.expires !== undefined && e.expires <= this.now() };
  }

  set(key: string, value: SharedValue | undefined, exptime?: number, flags?: number): void {
    if (value === undefined) {
      this.data.delete(key);
      return;
    }
    const e: Entry = { value };
    const expires = this.expiry(exptime);
    if (expires !== undefined) e.expires = expires;
    if (flags !== undefined) e.flags = flags;
    this.data.set(key, e);
  }

  add(key: string, value: SharedValue | undefined, exptime?: number, flags?: number): { ok: boolean; err?: string } {
    if (this.live(key)) return { ok: false, err: "exists" };
    this.set(key, value, exptime, flags);
    return { ok: true };
  }

  replace(key: string, value: SharedValue | undefined, exptime?: number, flags?: number): { ok: boolean; err?: string } {
    if (!this.live(key)) return { ok: false, err: "not found" };
    this.set(key, value, exptime, flags);
    return { ok: true };
  }

  delete(key: string): void {
    this.data.delete(key);
  }

  incr(key: string, by: number, init?: number, initTtl?: number): { value?: number; err?: string } {
    let e = this.live(key);
    if (!e) {
      if (init === undefined) return { err: "not found" };
      e = { value: { n: init } };
      const expires = this.expiry(initTtl);
      if (expires !== undefined) e.expires = expires;
      this.data.set(key, e);
    }
    if (!("n" in e.value)) return { err: "not a number" };
    e.value = { n: e.value.n + by };
    return { value: e.value.n };
  }

  expire(key: string, exptime?: number): { ok: boolean; err?: string } {
    const e = this.live(key);
    if (!e) return { ok: false, err: "not found" };
    const expires = this.expiry(exptime);
    if (expires === undefined) delete e.expires;
    else e.expires = expires;
    return { ok: true };
  }

  /** Seconds left (0: no expiry). */
  ttl(key: string): { value?: number; err?: string } {
    const e = this.live(key);
    if (!e) return { err: "not found" };
    return { value: e.expires === undefined ? 0 : (e.expires - this.now()) / 1000 };
  }

  keys(max = 1024): string[] {
    const out: string[] = [];
    for (const k of [...this.data.keys()]) {
      if (!this.live(k)) continue;
      out.push(k);
      if (max > 0 && out.length >= max) break;
    }
    return out;
  }

  flushAll(): void {
    this.data.clear();
  }
}

/** The ngx.shared operations a worker sends, answered from the dicts every worker shares. */
export function answerSharedDictCall(dicts: Map<string, SharedDict>, clock: Clock, msg: Record<string, unknown>): Record<string, unknown> {
  const name = String(msg.dict);
  let d = dicts.get(name);
  if (!d) {
    d = new SharedDict(name, clock);
    dicts.set(name, d);
  }
  const dict = d;
  return dict.at(typeof msg.now === "number" ? msg.now : undefined, () => operate(dict, msg));
}

function operate(d: SharedDict, msg: Record<string, unknown>): Record<string, unknown> {
  const key = String(msg.key);
  const value = msg.value as SharedValue | undefined;
  const exptime = msg.exptime as number | undefined;
  const flags = msg.flags as number | undefined;
  switch (msg.op) {
    case "get": {
      const e = d.get(key);
      return e ? { value: e.value, flags: e.flags } : {};
    }
    case "get_stale": {
      const s = d.getStale(key);
      return s ? { value: s.entry.value, flags: s.entry.flags, stale: s.stale } : {};
    }
    case "set":
    case "safe_set":
      d.set(key, value, exptime, flags);
      return { ok: true };
    case "add":
    case "safe_add":
      return d.add(key, value, exptime, flags);
    case "replace":
      return d.replace(key, value, exptime, flags);
    case "delete":
      d.delete(key);
      return { ok: true };
    case "incr":
      return d.incr(key, Number(msg.value), msg.init as number | undefined, msg.init_ttl as number | undefined);
    case "expire":
      return d.expire(key, exptime);
    case "ttl":
      return d.ttl(key);
    case "get_keys":
      return { keys: d.keys(msg.max as number | undefined) };
    case "flush_all":
      d.flushAll();
      return { ok: true };
    default:
      return { err: `unknown shared dict operation ${String(msg.op)}` };
  }
}
