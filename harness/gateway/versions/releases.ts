import { CONFIG_ETCD_3_15 } from "../config/config-cache.ts";
import type { ManagerBehaviour } from "../healthcheck/behaviour.ts";
import {
  checksAsConfigured,
  checksWithAuth,
  constructFromRuntimeOnly,
  constructResolvingInPlace,
} from "../plugins/ai-proxy-multi/construct-upstream.ts";
import { parseEndpointAsUrl, parseEndpointByPattern } from "../plugins/ai-proxy-multi/endpoint.ts";
import { statusVerPerInstance, statusVerSum } from "../plugins/ai-proxy-multi/picker.ts";
import { multiNodeFields, singleNodeFields } from "../plugins/ai-proxy-multi/runtime-fields.ts";
import type { VersionProfile } from "./profile.ts";

/** The line of `local node = instance._dns_value` in 3.15.0/3.16.0's construct_upstream. */
const NIL_INSTANCE_LINE = 304;

/** 3.15.0-3.17.0 manager: indexes construct_upstream's result unguarded, destroys on any version change. */
function unguardedManager(lines: Pick<ManagerBehaviour["lines"], "createIndex" | "workingIndex" | "createFailed" | "workingFailed" | "releaseExisting" | "releaseChecker">): ManagerBehaviour {
  return {
    lines: { ...lines, guardCreate: lines.createIndex, guardWorkingError: lines.workingIndex, guardWorkingWarn: lines.workingIndex },
    guardsConstructResult: false,
    keepsCheckerOnVersionChange: false,
    fetchCheckerKeepsLiveChecker: false,
    targetNotFoundIsUsable: false,
    probeHostFromDomain: false,
  };
}

const singleNode = singleNodeFields(parseEndpointByPattern);
const multiNode = multiNodeFields(parseEndpointAsUrl);

export const v3_15_0: VersionProfile = {
  name: "3.15.0",
  kind: "release",
  summary: "construct_upstream needs _dns_value; timers index its nil result (:184 create, :242 working check)",
  parseEndpoint: parseEndpointByPattern,
  fields: singleNode,
  constructUpstream: constructFromRuntimeOnly(singleNode, checksAsConfigured, NIL_INSTANCE_LINE),
  pickerHealthKey: statusVerSum,
  manager: unguardedManager({ createIndex: 184, workingIndex: 242, createFailed: 278, workingFailed: 292, releaseExisting: 201, releaseChecker: 260 }),
  configEtcd: CONFIG_ETCD_3_15,
};

export const v3_16_0: VersionProfile = {
  ...v3_15_0,
  name: "3.16.0",
  summary: "as 3.15.0, lines moved (:180 create, :238 working check)",
  manager: unguardedManager({ createIndex: 180, workingIndex: 238, createFailed: 274, workingFailed: 288, releaseExisting: 197, releaseChecker: 256 }),
};

export const v3_17_0: VersionProfile = {
  name: "3.17.0",
  kind: "release",
  summary: "construct_upstream resolves in place (mutates its input); a removed instance still crashes the timers",
  parseEndpoint: parseEndpointAsUrl,
  fields: multiNode,
  constructUpstream: constructResolvingInPlace(multiNode, checksWithAuth(() => "?")),
  pickerHealthKey: statusVerSum,
  manager: unguardedManager({ createIndex: 180, workingIndex: 238, createFailed: 274, workingFailed: 288, releaseExisting: 197, releaseChecker: 256 }),
  // config_etcd.lua@3.17.0:263,266,307,717,216
  configEtcd: { reloadKeepsUnchanged: false, lines: { canceled: 263, compacted: 266, smallerRevision: 307, readdir: 717, watchdirErr: 216 } },
};

export const v3_18_0: VersionProfile = {
  name: "3.18.0",
  kind: "release",
  summary: "timers guard construct_upstream; a changed version keeps the old checker until the new one is built",
  parseEndpoint: parseEndpointAsUrl,
  fields: multiNode,
  constructUpstream: constructResolvingInPlace(multiNode, checksWithAuth((path) => (path.includes("?") ? "&" : "?"))),
  pickerHealthKey: statusVerPerInstance,
  manager: {
    lines: { createIndex: 344, workingIndex: 472, createFailed: 534, workingFailed: 548, guardCreate: 339, guardWorkingError: 467, guardWorkingWarn: 469, releaseExisting: 421, releaseChecker: 516 },
    guardsConstructResult: true,
    keepsCheckerOnVersionChange: true,
    fetchCheckerKeepsLiveChecker: true,
    targetNotFoundIsUsable: true,
    probeHostFromDomain: true,
  },
  // config_etcd.lua@3.18.0:248,251,292,759,207; load_full_data keeps unchanged objects (:611-626)
  configEtcd: { reloadKeepsUnchanged: true, lines: { canceled: 248, compacted: 251, smallerRevision: 292, readdir: 759, watchdirErr: 207 } },
};
