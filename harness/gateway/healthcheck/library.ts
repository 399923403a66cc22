import type { Clock, TimerHandle } from "../clock/clock.ts";
import type { ErrorLog } from "../log/error-log.ts";
import type { Transport } from "../net/transport.ts";
import type { SharedDict } from "../shared-dict.ts";
import { NO_TRACE, type Tracer } from "../trace.ts";
import type { LibraryBehaviour } from "./behaviour.ts";
import type { Checker } from "./checker.ts";
import type { WorkerEvents } from "./events.ts";
import { CLEANUP_KEY, PERIODIC_LOCK } from "./health-shm.ts";
import type { LuaRandom } from "./lua-random.ts";

/** Where model code writes its log lines (an ErrorLog, or one worker's view of it with its pid). */
export type LogWriter = Pick<ErrorLog, "write">;

// healthcheck.lua's timer constants: a tick every 0.1 s, first delayed by up to 10 % jitter; the
// periodic lock lasts 15 ticks; stale targets are purged every 25 ticks.
const CHECK_INTERVAL_MS = 100;
const CHECK_JITTER = 0.01;
const LOCK_PERIOD = 1.5;
const CLEANUP_INTERVAL = 2.5;
/** Stopped checkers kept for the cleanup pass; older ones are dropped, as Lua's GC would. */
const MAX_HCS = 256;

export interface LibraryEnv {
  clock: Clock;
  transport: Transport;
  log: LogWriter;
  trace?: Tracer;
  /** The `upstream-healthcheck` dict every worker shares. */
  dict: SharedDict;
  events: WorkerEvents;
  behaviour: LibraryBehaviour;
  random: LuaRandom;
  pid: number;
  /**
   * `solo`: the only worker, so it always holds the periodic lock and wins every cleanup
   * election; the timer then fires only at the ticks where something is due (same result,
   * far fewer timer runs). `shared`: several workers tick every 0.1 s and compete through the
   * dict for the lock and the cleanup election, as lua-resty-healthcheck's workers do.
   */
  mode: "solo" | "shared";
}

/**
 * lua-resty-healthcheck's module-level state in one worker: the checkers created here (`hcs`)
 * and the one active-check timer they share, started with the first checker. Each tick (0.1 s,
 * the first after 0.1 s + jitter) the holder of the periodic lock runs every probe class whose
 * interval has passed, and targets that delayed_clear marked are purged after their time.
 */
export class HealthcheckLibrary {
  readonly hcs: Checker[] = [];
  /** The first tick (ms); ticks follow every 0.1 s. Undefined until the first checker. */
  private origin: number | undefined;
  private lastTick = -Infinity;
  /** v3.2.0/v3.2.1: last_cleanup_check (s). */
  private lastCleanup = 0;
  /** v3.2.2 in a solo worker: when the cleanup key it last set expires (s). */
  private electionExpiry: number | undefined;
  private handle: TimerHandle | undefined;
  private handleDue = Infinity;
  private stopped = false;
  readonly trace: Tracer;

  constructor(readonly env: LibraryEnv) {
    this.trace = env.trace ?? NO_TRACE;
  }

  get clock(): Clock {
    return this.env.clock;
  }
  get transport(): Transport {
    return this.env.transport;
  }
  get log(): LogWriter {
    return this.env.log;
  }
  get dict(): SharedDict {
    return this.env.dict;
  }
  get events(): WorkerEvents {
    return this.env.events;
  }
  get behaviour(): LibraryBehaviour {
    return this.env.behaviour;
  }

  /** ngx.now(): seconds with millisecond precision. */
  nowSeconds(): number {
    return Math.floor(this.env.clock.now()) / 1000;
  }

  /** A new checker joins `hcs`; the first one starts the timer. */
  register(c: Checker): void {
    if (this.origin === undefined) {
      const now = this.env.clock.now();
      this.lastCleanup = this.nowSeconds();
      this.origin = Math.ceil(now + (CHECK_INTERVAL_MS / 1000 + this.env.random.random() * CHECK_JITTER) * 1000);
    }
    this.hcs.push(c);
    if (this.hcs.length > MAX_HCS) {
      const i = this.hcs.findIndex((x, j) => j > 0 && !x.isActive());
      if (i > 0) this.hcs.splice(i, 1);
    }
    this.changed();
  }

  /** Something that decides the next tick changed (a checker started or stopped, targets marked). */
  changed(): void {
    if (this.origin === undefined || this.stopped) return;
    if (this.env.mode === "shared") {
      if (!this.handle) this.arm(this.origin);
      return;
    }
    this.arm(this.nextSoloTick(Math.max(this.lastTick + 1, this.env.clock.now())));
  }

  stop(): void {
    this.stopped = true;
    this.handle?.cancel();
    this.handle = undefined;
  }

  private arm(due: number): void {
    if (this.handle && due === this.handleDue) return;
    this.handle?.cancel();
    this.handle = undefined;
    this.handleDue = due;
    if (!Number.isFinite(due)) return;
    this.handle = this.env.clock.after(Math.max(0, due - this.env.clock.now()), () => {
      this.handle = undefined;
      this.handleDue = Infinity;
      this.tick(due);
      if (this.env.mode === "shared") this.arm(due + CHECK_INTERVAL_MS);
      else this.changed();
    });
  }

  /** The first tick at or after `ms`. */
  private gridCeil(ms: number): number {
    const origin = this.origin!;
    if (ms <= origin) return origin;
    return origin + Math.ceil((ms - origin) / CHECK_INTERVAL_MS) * CHECK_INTERVAL_MS;
  }

  /** The first tick at or after `from` where `cond(seconds)` holds (ticks compare as ngx.now() does). */
  private firstTick(from: number, approx: number, cond: (cur: number) => boolean): number {
    let t = this.gridCeil(Math.max(from, approx));
    while (!cond(t / 1000)) t += CHECK_INTERVAL_MS;
    return t;
  }

  /** A solo worker's next tick where a probe class is due or a purge would happen. */
  private nextSoloTick(from: number): number {
    let best = Infinity;
    for (const c of this.hcs) {
      for (const [lastRun, interval] of c.dueClasses()) {
        best = Math.min(best, this.firstTick(from, (lastRun + interval) * 1000 - 1, (cur) => lastRun + interval <= cur));
      }
    }
    const purge = this.earliestPurge();
    if (purge !== undefined) {
      let w = this.soloWindowAfter(this.lastTick);
      while (w < from || w / 1000 < purge) w = this.soloWindowAfterWindow(w);
      best = Math.min(best, w);
    }
    return best;
  }

  /** The checkers the cleanup pass looks at: the first one (v3.2.0/v3.2.1) or all (v3.2.2). */
  private cleanupCandidates(): Checker[] {
    return this.env.behaviour.cleanup === "elected" ? this.hcs : this.hcs.slice(0, 1);
  }

  private earliestPurge(): number | undefined {
    let min: number | undefined;
    for (const c of this.cleanupCandidates()) {
      const p = c.earliestPurge();
      if (p !== undefined && (min === undefined || p < min)) min = p;
    }
    return min;
  }

  // A solo worker's cleanup windows, computed as its skipped ticks would have found them.

  /** The first cleanup window after tick `after`, from the state the last executed tick left. */
  private soloWindowAfter(after: number): number {
    if (this.env.behaviour.cleanup === "elected") {
      const expiry = this.electionExpiry;
      return expiry === undefined ? this.gridCeil(after + 1) : this.firstTick(after + 1, expiry * 1000, (cur) => !(expiry > cur));
    }
    const last = this.lastCleanup;
    return this.firstTick(after + 1, (last + CLEANUP_INTERVAL) * 1000, (cur) => last + CLEANUP_INTERVAL < cur);
  }

  /** The window after window `w` (which set the state to `w` itself). */
  private soloWindowAfterWindow(w: number): number {
    const s = w / 1000;
    if (this.env.behaviour.cleanup === "elected") return this.firstTick(w + 1, (s + CLEANUP_INTERVAL) * 1000, (cur) => !(s + CLEANUP_INTERVAL > cur));
    return this.firstTick(w + 1, (s + CLEANUP_INTERVAL) * 1000, (cur) => s + CLEANUP_INTERVAL < cur);
  }

  /** Bring a solo worker's cleanup state up to tick `t`, through the windows it skipped (none purged anything). */
  private catchUp(t: number): void {
    for (let w = this.soloWindowAfter(this.lastTick); w < t; w = this.soloWindowAfterWindow(w)) {
      if (this.env.behaviour.cleanup === "elected") this.electionExpiry = w / 1000 + CLEANUP_INTERVAL;
      else this.lastCleanup = w / 1000;
    }
  }

  // ------------------------------------------------------------------ one tick

  private tick(t: number): void {
    if (this.env.mode === "solo") this.catchUp(t);
    this.lastTick = t;
    const cur = t / 1000;
    if (this.env.behaviour.cleanup === "elected") {
      if (this.electCleanup(cur)) for (const c of this.hcs) c.purgeMarked(cur);
      if (!this.hcs.some((c) => c.isActive())) {
        this.releaseLock();
        return;
      }
      if (!this.lock()) return;
      for (const c of this.hcs) c.runDue(cur);
      return;
    }
    if (!this.lock()) return;
    for (const c of this.hcs) {
      if (this.lastCleanup + CLEANUP_INTERVAL < cur) {
        c.purgeMarked(cur);
        this.lastCleanup = cur;
      }
      c.runDue(cur);
    }
  }

  /** get_periodic_lock + renew_periodic_lock: only the holder probes. */
  private lock(): boolean {
    if (this.env.mode === "solo") return true;
    const dict = this.env.dict;
    const holder = dict.get(PERIODIC_LOCK);
    if (!holder) {
      if (!dict.add(PERIODIC_LOCK, { n: this.env.pid }, LOCK_PERIOD).ok) return false;
    } else if (!("n" in holder.value) || holder.value.n !== this.env.pid) return false;
    dict.set(PERIODIC_LOCK, { n: this.env.pid }, LOCK_PERIOD);
    return true;
  }

  private releaseLock(): void {
    if (this.env.mode === "solo") return;
    const holder = this.env.dict.get(PERIODIC_LOCK);
    if (holder && "n" in holder.value && holder.value.n === this.env.pid) this.env.dict.delete(PERIODIC_LOCK);
  }

  /** v3.2.2: the first worker to tick in a window wins it (shm:add with a 2.5 s expiry). */
  private electCleanup(cur: number): boolean {
    if (this.env.mode === "shared") return this.env.dict.add(CLEANUP_KEY, { n: this.env.pid }, CLEANUP_INTERVAL).ok;
    const expiry = this.electionExpiry;
    if (expiry !== undefined && expiry > cur) return false;
    this.electionExpiry = cur + CLEANUP_INTERVAL;
    return true;
  }
}
