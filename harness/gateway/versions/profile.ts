import type { ConfigEtcdBehaviour } from "../config/config-cache.ts";
import type { ManagerBehaviour } from "../healthcheck/behaviour.ts";
import type { ConstructUpstream } from "../plugins/ai-proxy-multi/construct-upstream.ts";
import type { EndpointParser } from "../plugins/ai-proxy-multi/endpoint.ts";
import type { PickerHealthKey } from "../plugins/ai-proxy-multi/picker.ts";
import type { RuntimeFields } from "../plugins/ai-proxy-multi/runtime-fields.ts";

/**
 * A version profile: how one APISIX release (or one fix candidate) behaves where releases differ.
 * Data plus a few strategy functions; the gateway itself is the same for every profile.
 */
export interface VersionProfile {
  /** "3.15.0", or a candidate's name such as "suggested". */
  name: string;
  kind: "release" | "candidate";
  /** One line for listings. */
  summary: string;
  /** How `override.endpoint` is read. */
  parseEndpoint: EndpointParser;
  /** Which runtime fields the request path records on the instance. */
  fields: RuntimeFields;
  /** construct_upstream. */
  constructUpstream: ConstructUpstream;
  /** The health part of the cached server picker's key. */
  pickerHealthKey: PickerHealthKey;
  /** healthcheck_manager.lua. */
  manager: ManagerBehaviour;
  /** core/config_etcd.lua: its log lines and how a full reload treats unchanged objects. */
  configEtcd: ConfigEtcdBehaviour;
}
