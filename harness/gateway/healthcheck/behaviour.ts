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
    /** The info lines of letting a checker go: `releasing existing checker` (create), `try to release checker` (working check). */
    releaseExisting: number;
    releaseChecker: number;
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
}
