import type { SharedDict } from "../shared-dict.ts";

/**
 * lua-resty-healthcheck's keys in the `upstream-healthcheck` shared dict, as v3.2.x lays them out
 * (healthcheck.lua `_M.new`, "prepare shm keys"): everything a checker knows about its targets
 * lives under its name, so every checker with that name, in any worker, reads the same state.
 */
export const HEALTHCHECK_SHM = "upstream-healthcheck";
const SHM_PREFIX = "lua-resty-healthcheck:";

/** The library's internal states; the shm stores their 1-based index (INTERNAL_STATES). */
export type InternalHealth = "healthy" | "unhealthy" | "mostly_healthy" | "mostly_unhealthy";
const INTERNAL_STATES: readonly InternalHealth[] = ["healthy", "unhealthy", "mostly_healthy", "mostly_unhealthy"];

/** One entry of a checker's target list. `purge_time` (s): marked by delayed_clear. */
export interface TargetRecord {
  ip: string;
  port: number;
  hostname: string;
  hostheader?: string;
  purge_time?: number;
}

/** key_for: `<prefix>:<ip>:<port>[:<hostname>]`. */
function keyFor(prefix: string, ip: string, port: number, hostname: string | undefined): string {
  return hostname !== undefined ? `${prefix}:${ip}:${port}:${hostname}` : `${prefix}:${ip}:${port}`;
}

/** One checker name's part of the dict. */
export class HealthShm {
  private readonly listKey: string;
  private readonly statePrefix: string;
  private readonly counterPrefix: string;
  /** The last list text read and its parsed form (the probes read the list every interval). */
  private parsed: { text: string; list: readonly TargetRecord[] } | undefined;

  constructor(
    readonly dict: SharedDict,
    readonly name: string,
  ) {
    this.listKey = `${SHM_PREFIX}${name}:target_list`;
    this.statePrefix = `${SHM_PREFIX}${name}:state`;
    this.counterPrefix = `${SHM_PREFIX}${name}:counter`;
  }

  /** fetch_target_list: the list (do not modify it: write a new one with setTargetList). */
  targetList(): readonly TargetRecord[] {
    const e = this.dict.get(this.listKey);
    if (!e || !("s" in e.value)) return [];
    const text = e.value.s;
    if (this.parsed?.text !== text) this.parsed = { text, list: JSON.parse(text) as TargetRecord[] };
    return this.parsed.list;
  }

  setTargetList(list: readonly TargetRecord[]): void {
    this.dict.set(this.listKey, { s: JSON.stringify(list) });
  }

  state(ip: string, port: number, hostname: string | undefined): InternalHealth | undefined {
    const e = this.dict.get(keyFor(this.statePrefix, ip, port, hostname));
    return e && "n" in e.value ? INTERNAL_STATES[e.value.n - 1] : undefined;
  }

  setState(ip: string, port: number, hostname: string | undefined, health: InternalHealth): void {
    this.dict.set(keyFor(this.statePrefix, ip, port, hostname), { n: INTERNAL_STATES.indexOf(health) + 1 });
  }

  /** The 32-bit multi-counter (four 8-bit counters), 0 when unset. */
  counter(ip: string, port: number, hostname: string | undefined): number {
    const e = this.dict.get(keyFor(this.counterPrefix, ip, port, hostname));
    return e && "n" in e.value ? e.value.n : 0;
  }

  /** shm:incr(counter_key, step, 0). */
  incrCounter(ip: string, port: number, hostname: string | undefined, step: number): number {
    return this.dict.incr(keyFor(this.counterPrefix, ip, port, hostname), step, 0).value ?? 0;
  }

  setCounter(ip: string, port: number, hostname: string | undefined, value: number): void {
    this.dict.set(keyFor(this.counterPrefix, ip, port, hostname), { n: value });
  }

  /** clear_target_data_from_shm: a removed or purged target's state and counter. */
  clearTarget(ip: string, port: number, hostname: string | undefined): void {
    this.dict.delete(keyFor(this.statePrefix, ip, port, hostname));
    this.dict.delete(keyFor(this.counterPrefix, ip, port, hostname));
  }
}

/** The periodic lock every worker's active-check timer competes for, and (v3.2.2) the cleanup election key. */
export const PERIODIC_LOCK = `${SHM_PREFIX}:period_lock:`;
export const CLEANUP_KEY = `${PERIODIC_LOCK}:cleanup`;
