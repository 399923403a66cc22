import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { disownGroup, groupAlive, ownGroup, pollUntil, signalGroup } from "./owned.ts";

export interface SpawnOwnedOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Default: stdin and stdout ignored, stderr piped. */
  stdio?: StdioOptions;
  /**
   * Whether the running child keeps this process alive, as a plain spawn does (default true).
   * false: the process may end while the child runs; the exit handler then kills the child.
   */
  keepAlive?: boolean;
  /** stop(): milliseconds between SIGTERM and SIGKILL (default 2000). */
  killAfterMs?: number;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the executable could not be started (ENOENT, EACCES, ...). */
  error?: Error;
}

/** After SIGKILL, how long to wait for the group to disappear before giving up on it. */
const AFTER_KILL_MS = 1000;

/** A child in a process group of its own that this process owns until the whole group is gone. */
export class OwnedProcess {
  readonly child: ChildProcess;
  /** Resolves when the child itself exits (or could not be started); never rejects. */
  readonly exited: Promise<ExitStatus>;
  private leaderDone = false;
  private ended: Promise<ExitStatus> | undefined;
  private readonly killAfterMs: number;

  constructor(file: string, args: readonly string[], opts: SpawnOwnedOptions = {}) {
    this.killAfterMs = opts.killAfterMs ?? 2000;
    // detached: setsid(), so the child leads a new process group (and session). A Ctrl-C on the
    // terminal then reaches only the harness, which stops its children in its own order, and
    // everything the child starts (a wrapper script's etcd) can be signalled as one group.
    this.child = spawn(file, args, { detached: true, stdio: opts.stdio ?? ["ignore", "ignore", "pipe"], env: opts.env ?? process.env, cwd: opts.cwd });
    const pid = this.child.pid;
    if (pid !== undefined) ownGroup(pid);
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.child.once("error", (error) => {
        if (this.child.pid === undefined) {
          this.leaderDone = true;
          resolve({ code: null, signal: null, error });
        }
      });
      // 'exit', not 'close': a grandchild holding the child's stderr must not delay it.
      this.child.once("exit", (code, signal) => {
        this.leaderDone = true;
        resolve({ code, signal });
      });
    });
    // The rest of a group whose leader died on its own is stopped too (e.g. the etcd a wrapper
    // shell started, when the shell was killed).
    void this.exited.then(() => {
      if (this.pid !== undefined && groupAlive(this.pid)) void this.stop();
      else if (this.pid !== undefined) disownGroup(this.pid);
    });
    if (opts.keepAlive === false) {
      this.child.unref();
      for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
    }
  }

  /** The child's pid, which is also its process group id; undefined when it could not start. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The child itself has not exited (members of its group may outlive it briefly). */
  get running(): boolean {
    return this.pid !== undefined && !this.leaderDone;
  }

  /** Signal every process in the child's group; false when none is left. */
  signal(sig: NodeJS.Signals): boolean {
    return this.pid !== undefined && signalGroup(this.pid, sig);
  }

  /**
   * SIGTERM to the whole group, SIGKILL after the grace period, and resolve once the child has
   * exited and no process of its group is left. Idempotent.
   */
  stop(graceMs = this.killAfterMs): Promise<ExitStatus> {
    this.ended ??= this.terminate(graceMs);
    return this.ended;
  }

  private async terminate(graceMs: number): Promise<ExitStatus> {
    const pgid = this.pid;
    if (pgid === undefined) return this.exited;
    signalGroup(pgid, "SIGTERM");
    if (!(await this.goneWithin(pgid, graceMs))) {
      signalGroup(pgid, "SIGKILL");
      await this.goneWithin(pgid, AFTER_KILL_MS);
    }
    disownGroup(pgid);
    return this.exited;
  }

  /**
   * Whether the child and its whole group are gone within ms. The child's own exit is an event;
   * the rest of its group (a wrapper's etcd) is looked at after it (pollUntil).
   */
  private async goneWithin(pgid: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
    return pollUntil(() => this.leaderDone && !groupAlive(pgid), deadline);
  }
}

/** Start an executable that must not outlive this process (see index.ts). */
export function spawnOwned(file: string, args: readonly string[], opts?: SpawnOwnedOptions): OwnedProcess {
  return new OwnedProcess(file, args, opts);
}
