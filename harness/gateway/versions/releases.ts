import { CONFIG_ETCD_3_15 } from "../config/config-cache.ts";
import type { LibraryBehaviour, ManagerBehaviour } from "../healthcheck/behaviour.ts";
import type { PickBehaviour } from "../plugins/ai-proxy-multi/behaviour.ts";
import {
  checksAsConfigured,
  checksWithAuth,
  constructFromRuntimeOnly,
  constructResolvingInPlace,
} from "../plugins/ai-proxy-multi/construct-upstream.ts";
import { parseEndpointAsUrl, parseEndpointByPattern } from "../plugins/ai-proxy-multi/endpoint.ts";
import { multiNodeFields, singleNodeFields } from "../plugins/ai-proxy-multi/runtime-fields.ts";
import type { VersionProfile } from "./profile.ts";

/** The line of `local node = instance._dns_value` in 3.15.0/3.16.0's construct_upstream. */
const NIL_INSTANCE_LINE = 304;

/** 3.15.0-3.17.0 manager: indexes construct_upstream's result unguarded, destroys on any version change. */
function unguardedManager(lines: Pick<ManagerBehaviour["lines"], "createIndex" | "workingIndex" | "createFailed" | "workingFailed" | "releaseExisting" | "releaseChecker">): ManagerBehaviour {
  return {
    lines: { ...lines, guardCreate: lines.createIndex, guardWorkingError: lines.workingIndex, guardWorkingWarn: lines.workingIndex, targetNotFound: 0, releaseAfterCreateFailed: 0 },
    guardsConstructResult: false,
    keepsCheckerOnVersionChange: false,
    fetchCheckerKeepsLiveChecker: false,
    targetNotFoundIsUsable: false,
    probeHostFromDomain: false,
    createRemovesStaleTargets: false,
  };
}

/**
 * lua-resty-healthcheck as each release pins it: every library line comes from checker:log's
 * ngx.log call (healthcheck.lua:1383@v3.2.0, :1385@v3.2.1, :1384@v3.2.2). 3.18.0 pins v3.2.3,
 * which is not at hand; v3.2.2 is the nearest.
 */
const HEALTHCHECK_3_2_0: LibraryBehaviour = { version: "3.2.0", logLine: 1383, cleanup: "lock-holder" };
const HEALTHCHECK_3_2_1: LibraryBehaviour = { version: "3.2.1", logLine: 1385, cleanup: "lock-holder" };
const HEALTHCHECK_3_2_2: LibraryBehaviour = { version: "3.2.2", logLine: 1384, cleanup: "elected" };

const PLUGIN = "ai-proxy-multi.lua";

// apisix/plugins/ai-proxy-multi.lua and apisix/core/resolver.lua at each tag: parse_domain_for_node
// logs at :174 (3.15.0, 3.16.0) after resolver.lua:80 parse_domain; 3.17.0/3.18.0 resolve every
// address (parse_domain_for_nodes :209/:297, resolver.lua:129 parse_domain_all).
const dns3_15 = { resolver: { file: "resolver.lua", line: 80, fn: "parse_domain" }, plugin: { file: PLUGIN, line: 174, fn: "parse_domain_for_node" } };
const dns3_17 = { resolver: { file: "resolver.lua", line: 129, fn: "parse_domain_all" }, plugin: { file: PLUGIN, line: 209, fn: "parse_domain_for_nodes" } };
const dns3_18 = { resolver: dns3_17.resolver, plugin: { file: PLUGIN, line: 297, fn: "parse_domain_for_nodes" } };

/** 3.15.0/3.16.0 pick_target (fetch_health_instances :254/:263; resource.lua:76). */
const pick3_15: PickBehaviour = {
  checksBodyFirst: false,
  pickerKey: "sum",
  lines: {
    targetStatus: { file: PLUGIN, line: 254, fn: "fetch_health_instances" },
    allUnhealthy: { file: PLUGIN, line: 263, fn: "fetch_health_instances" },
    resourceNotFound: { file: "resource.lua", line: 76, fn: "fetch_latest_conf" },
  },
};

const singleNode = singleNodeFields(parseEndpointByPattern, dns3_15);

export const v3_15_0: VersionProfile = {
  name: "3.15.0",
  kind: "release",
  summary: "construct_upstream needs _dns_value; timers index its nil result (:184 create, :242 working check)",
  parseEndpoint: parseEndpointByPattern,
  fields: singleNode,
  constructUpstream: constructFromRuntimeOnly(singleNode, checksAsConfigured, NIL_INSTANCE_LINE),
  pick: pick3_15,
  // openai-base.lua's request(): httpc:connect fails -> :340 at error, handle_error's 500/504.
  proxy: { connectFailed: { file: "openai-base.lua", line: 340, level: "error", prefix: "failed to connect to LLM server: " } },
  manager: unguardedManager({ createIndex: 184, workingIndex: 242, createFailed: 278, workingFailed: 292, releaseExisting: 201, releaseChecker: 260 }),
  configEtcd: CONFIG_ETCD_3_15,
  healthcheck: HEALTHCHECK_3_2_0,
};

export const v3_16_0: VersionProfile = {
  ...v3_15_0,
  name: "3.16.0",
  summary: "as 3.15.0, lines moved (:180 create, :238 working check)",
  proxy: { connectFailed: { ...v3_15_0.proxy.connectFailed, line: 366 } },
  manager: unguardedManager({ createIndex: 180, workingIndex: 238, createFailed: 274, workingFailed: 288, releaseExisting: 197, releaseChecker: 256 }),
  healthcheck: HEALTHCHECK_3_2_1,
};

const multiNode17 = multiNodeFields(parseEndpointAsUrl, dns3_17);

export const v3_17_0: VersionProfile = {
  name: "3.17.0",
  kind: "release",
  summary: "construct_upstream resolves in place (mutates its input); a removed instance still crashes the timers",
  parseEndpoint: parseEndpointAsUrl,
  fields: multiNode17,
  constructUpstream: constructResolvingInPlace(multiNode17, checksWithAuth(() => "?")),
  pick: {
    // access: base.detect_request_type before pick_ai_instance; fetch_health_instances :365/:381.
    checksBodyFirst: true,
    pickerKey: "sum",
    lines: {
      targetStatus: { file: PLUGIN, line: 365, fn: "fetch_health_instances" },
      allUnhealthy: { file: PLUGIN, line: 381, fn: "fetch_health_instances" },
      resourceNotFound: pick3_15.lines.resourceNotFound,
    },
  },
  // ai-proxy/base.lua's do_request (run under pcall: no function name) warns what
  // ai-transport/http.lua:145 returned: "connect: <err>".
  proxy: { connectFailed: { file: "base.lua", line: 226, level: "warn", prefix: "failed to send request to LLM server: connect: " } },
  manager: unguardedManager({ createIndex: 180, workingIndex: 238, createFailed: 274, workingFailed: 288, releaseExisting: 197, releaseChecker: 256 }),
  // config_etcd.lua@3.17.0:263,266,307,717,216
  configEtcd: { reloadKeepsUnchanged: false, lines: { canceled: 263, compacted: 266, smallerRevision: 307, readdir: 717, watchdirErr: 216 } },
  healthcheck: HEALTHCHECK_3_2_1,
};

const multiNode18 = multiNodeFields(parseEndpointAsUrl, dns3_18);

export const v3_18_0: VersionProfile = {
  name: "3.18.0",
  kind: "release",
  summary: "timers guard construct_upstream; a changed version keeps the old checker until the new one is built",
  parseEndpoint: parseEndpointAsUrl,
  fields: multiNode18,
  constructUpstream: constructResolvingInPlace(multiNode18, checksWithAuth((path) => (path.includes("?") ? "&" : "?"))),
  pick: {
    // get_checkers_status_ver :421 (apache/apisix#13505); create_health_status :466/:485; resource.lua:87.
    checksBodyFirst: true,
    pickerKey: "per-instance",
    lines: {
      targetStatus: { file: PLUGIN, line: 466, fn: "create_health_status" },
      allUnhealthy: { file: PLUGIN, line: 485, fn: "create_health_status" },
      resourceNotFound: { file: "resource.lua", line: 87, fn: "fetch_latest_conf" },
    },
  },
  proxy: { connectFailed: { file: "base.lua", line: 344, level: "warn", prefix: "failed to send request to LLM server: connect: " } },
  manager: {
    lines: { createIndex: 344, workingIndex: 472, createFailed: 534, workingFailed: 548, guardCreate: 339, guardWorkingError: 467, guardWorkingWarn: 469, targetNotFound: 267, releaseExisting: 421, releaseChecker: 516, releaseAfterCreateFailed: 406 },
    guardsConstructResult: true,
    keepsCheckerOnVersionChange: true,
    fetchCheckerKeepsLiveChecker: true,
    targetNotFoundIsUsable: true,
    probeHostFromDomain: true,
    createRemovesStaleTargets: true,
  },
  // config_etcd.lua@3.18.0:248,251,292,759,207; load_full_data keeps unchanged objects (:611-626)
  configEtcd: { reloadKeepsUnchanged: true, lines: { canceled: 248, compacted: 251, smallerRevision: 292, readdir: 759, watchdirErr: 207 } },
  healthcheck: HEALTHCHECK_3_2_2,
};
