/**
 * How a release's healthcheck_manager.lua behaves where releases differ. Pure data: the manager
 * reads it, versions/ fills it in.
 */
export interface ManagerBehaviour {
  /** Source file lines that appear in log lines and Lua errors. */
  lines: {
    /** `upstream.resource_key = ...` in timer_create_checker / timer_working_pool_check. */
    createIndex: number;
    workingIndex: number;
    /** The `failed to run ...` log of each timer's protected call. */
    createFailed: number;
    workingFailed: number;
    /** Where a guarded release logs "unable to construct upstream" (create; working error/warn). */
    guardCreate: number;
    guardWorkingError: number;
    guardWorkingWarn: number;
    /** fetch_node_status's "health check target status not available yet" (3.18.0). */
    targetNotFound: number;
    /** The info lines of letting a checker go: `releasing existing checker` (create), `try to release checker` (working check). */
    releaseExisting: number;
    releaseChecker: number;
    /** The warn when a rebuild's new checker cannot be created and the old one goes (3.18.0). */
    releaseAfterCreateFailed: number;
  };
  /** Protect construct_upstream and check its result instead of indexing nil. */
  guardsConstructResult: boolean;
  /**
   * On a version change where the upstream still has checks and nodes: keep the checker alive,
   * queue the new version, and swap (or reuse, when checks are unchanged) once it is built.
   */
  keepsCheckerOnVersionChange: boolean;
  /** fetch_checker keeps returning the live old checker while a new version waits. */
  fetchCheckerKeepsLiveChecker: boolean;
  /** fetch_node_status treats "target not found" as usable instead of unhealthy. */
  targetNotFoundIsUsable: boolean;
  /** Add node.domain as the probe's Host header. */
  probeHostFromDomain: boolean;
  /** create_checker removes targets left in the shm that the upstream no longer has (3.18.0). */
  createRemovesStaleTargets: boolean;
}

/**
 * The lua-resty-healthcheck release a version pins, where releases differ (3.15.0 pins v3.2.0,
 * 3.16.0/3.17.0 v3.2.1, 3.18.0 v3.2.3, of which v3.2.2 is the nearest we have).
 */
export interface LibraryBehaviour {
  version: string;
  /** Every library line is logged through `checker:log`, so it reads `healthcheck.lua:<this>: log():`. */
  logLine: number;
  /**
   * Who purges targets delayed_clear marked: `lock-holder` (v3.2.0/v3.2.1: the periodic-lock
   * holder, one checker per 2.5 s window, the first of its checkers) or `elected` (v3.2.2: a worker
   * elected per window purges all of its checkers; a worker without an active checker gives the
   * lock up).
   */
  cleanup: "lock-holder" | "elected";
}
