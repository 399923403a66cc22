import type { LogSource } from "../../log/error-log.ts";

/**
 * How a release's ai-proxy-multi.lua picks an instance, where releases differ. Pure data: the
 * plugin reads it, versions/ fills it in.
 */
export interface PickBehaviour {
  /**
   * access reads and checks the request body before any balancing (3.17.0+:
   * base.detect_request_type first). Before, the endpoints are resolved, checkers queued and an
   * instance picked, and only the driver then refuses a bad body.
   */
  checksBodyFirst: boolean;
  /**
   * The server picker is cached per route under `<crc32 of the plugin conf>#<this>`:
   * `sum` adds up the checkers' status_ver (3.15.0-3.17.0), so a picker built before the checkers
   * existed is reused once they do, while their status_ver is still 0 (the stale picker of
   * apache/apisix#13505); `per-instance` joins each instance's status_ver, "x" while it has no
   * checker (3.18.0, get_checkers_status_ver).
   */
  pickerKey: "sum" | "per-instance";
  /** Log sites of the request path. */
  lines: {
    /** "failed to get health check target status" (fetch_health_instances / create_health_status). */
    targetStatus: LogSource;
    /** "all upstream nodes is unhealthy, use default". */
    allUnhealthy: LogSource;
    /** resource.lua's "resource not found" (fetch_latest_conf). */
    resourceNotFound: LogSource;
  };
}

/**
 * How a release's AI driver reports a connection to the instance that failed (both engines
 * forward through the same TypeScript, so both take this from the release's profile).
 */
export interface ProxyBehaviour {
  /** Where the failure is logged, at which level, and the text before the socket's error. */
  connectFailed: LogSource & { level: "error" | "warn"; prefix: string };
}
