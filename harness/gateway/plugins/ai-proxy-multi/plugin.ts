import type { ConfigItem } from "../../config/config-cache.ts";
import type { Checker } from "../../healthcheck/checker.ts";
import type { HealthCheckManager, UpstreamConstructor } from "../../healthcheck/manager.ts";
import type { HashOrder, LuaRandom } from "../../healthcheck/lua-random.ts";
import { jsonResponse, type GatewayRequest, type GatewayResponse } from "../../http-types.ts";
import type { Transport } from "../../net/transport.ts";
import type { VersionProfile } from "../../versions/profile.ts";
import type { ConstructResult } from "./construct-upstream.ts";
import { forwardToInstance, requestContext } from "./forward.ts";
import { ServerPicker, type PickerNode } from "./picker.ts";
import type { PluginEnv } from "./runtime-fields.ts";
import type { AiProxyMultiConf, DnsNode, Instance } from "./types.ts";

export const PLUGIN_NAME = "ai-proxy-multi";

export interface AiProxyMultiEnv extends PluginEnv {
  transport: Transport;
  manager: HealthCheckManager;
  /** resource.fetch_latest_conf; `context`: the caller's log suffix. */
  fetchLatestConf(resourcePath: string, context?: string): ConfigItem | undefined;
  /** The order pairs() walks a table of instance names in. */
  order: HashOrder;
  random: LuaRandom;
}

export { INSTANCE_HEADER, requestContext } from "./forward.ts";

/**
 * The ai-proxy-multi plugin in one worker: picks an instance for each chat request (skipping
 * instances whose checker reports them unhealthy) and forwards the request to its provider. For
 * instances with checks, the request path records the resolved endpoint on the in-memory config
 * and asks the manager for a checker, exactly the coupling that breaks in #13101.
 */
export class AiProxyMulti implements UpstreamConstructor {
  /** lrucache_server_picker: route key -> the picker and the version it was built for. */
  private readonly pickers = new Map<string, { version: string; picker: ServerPicker }>();
  /** plugin.conf_version: computed once per conf object, as `conf._version` is. */
  private readonly confVersions = new WeakMap<object, string>();

  constructor(
    private readonly profile: VersionProfile,
    private readonly env: AiProxyMultiEnv,
  ) {}

  constructUpstream(instance: Instance | undefined): ConstructResult {
    return this.profile.constructUpstream(instance, this.env);
  }

  async access(route: ConfigItem, req: GatewayRequest): Promise<GatewayResponse> {
    const conf = route.value.plugins?.[PLUGIN_NAME] as AiProxyMultiConf | undefined;
    if (!conf) return jsonResponse(500, { error_msg: "route has no ai-proxy-multi config" });
    const pick = this.profile.pick;
    if (pick.checksBodyFirst) {
      const bad = badBody(req);
      if (bad) return bad;
    }
    const picked = conf.instances.length === 1 ? conf.instances[0]! : this.pickTarget(route, conf, requestContext(req));
    if (typeof picked === "string") return jsonResponse(503, { error_msg: picked });
    if (!pick.checksBodyFirst) {
      const bad = badBody(req);
      if (bad) return bad;
    }
    return this.forward(picked, req, requestContext(req));
  }

  /** pick_target: resolve endpoints of instances with checks, fetch checkers, filter, pick. */
  private pickTarget(route: ConfigItem, conf: AiProxyMultiConf, context: string): Instance | string {
    const parent = this.env.fetchLatestConf(route.key, context);
    if (!parent) return "failed to fetch the parent config";
    const latest = (parent.value.plugins?.[PLUGIN_NAME] as AiProxyMultiConf | undefined)?.instances ?? [];
    const fields = this.profile.fields;
    const checkers = new Map<string, Checker | undefined>();
    conf.instances.forEach((instance, i) => {
      if (!instance.checks) return;
      fields.resolve(instance, this.env, context);
      const resourcePath = `${route.key}#plugins['${PLUGIN_NAME}'].instances[${i}]`;
      const resourceVersion = `${route.modifiedIndex}${instance._nodes_ver ?? ""}`;
      const target = latest[i];
      if (target) fields.copy(instance, target);
      checkers.set(instance.name, this.env.manager.fetchChecker(resourcePath, resourceVersion));
    });

    const version = `${this.confVersion(conf)}#${this.statusVersion(conf, checkers)}`;
    let cached = this.pickers.get(route.key);
    if (!cached || cached.version !== version) {
      cached = { version, picker: new ServerPicker(this.healthyInstances(conf, checkers, context), this.env.order, this.env.random) };
      this.pickers.set(route.key, cached);
    }
    const name = cached.picker.pick();
    const instance = conf.instances.find((i) => i.name === name);
    if (!instance) return "failed to find valid upstream server, no valid instance";
    fields.useNodeForRequest?.(instance, this.env);
    return instance;
  }

  /** crc32 of the conf as first seen (runtime fields included): equal confs give equal versions. */
  private confVersion(conf: AiProxyMultiConf): string {
    let v = this.confVersions.get(conf);
    if (v === undefined) this.confVersions.set(conf, (v = JSON.stringify(conf)));
    return v;
  }

  private statusVersion(conf: AiProxyMultiConf, checkers: Map<string, Checker | undefined>): string {
    if (this.profile.pick.pickerKey === "per-instance") return conf.instances.map((i) => checkers.get(i.name)?.status_ver ?? "x").join("-");
    let sum = 0;
    for (const c of checkers.values()) sum += c?.status_ver ?? 0;
    return String(sum);
  }

  /**
   * fetch_health_instances: the instances with a healthy node (by their checker), or all of them
   * when none is. 3.17+ remember each instance's healthy nodes for the request's node.
   */
  private healthyInstances(conf: AiProxyMultiConf, checkers: Map<string, Checker | undefined>, context: string): PickerNode[] {
    const lines = this.profile.pick.lines;
    const multi = this.profile.fields.useNodeForRequest !== undefined;
    const healthy: Instance[] = [];
    for (const ins of conf.instances) {
      const checker = checkers.get(ins.name);
      if (!checker) {
        if (multi) delete ins._healthy_dns_nodes;
        healthy.push(ins);
        continue;
      }
      const host = ins.checks?.active?.host;
      const port = ins.checks?.active?.port;
      const up: DnsNode[] = [];
      for (const node of this.profile.fields.nodes(ins) ?? []) {
        const [ok, err] = this.nodeStatus(checker, node.host, port ?? node.port, host, context);
        if (ok) up.push(node);
        else if (err) this.env.log.write("warn", lines.targetStatus, `failed to get health check target status, addr: ${node.host}:${port ?? node.port}, host: ${host ?? "nil"}, err: ${err}`, context);
      }
      if (multi) {
        if (up.length > 0) ins._healthy_dns_nodes = up;
        else delete ins._healthy_dns_nodes;
      }
      if (up.length > 0) healthy.push(ins);
    }
    if (healthy.length > 0) return healthy;
    this.env.log.write("warn", lines.allUnhealthy, "all upstream nodes is unhealthy, use default", context);
    if (multi && this.profile.manager.targetNotFoundIsUsable) for (const ins of conf.instances) delete ins._healthy_dns_nodes;
    return conf.instances;
  }

  /** 3.18.0 asks the manager (fetch_node_status); earlier releases ask the checker itself. */
  private nodeStatus(checker: Checker, ip: string, port: number, hostname: string | undefined, context: string): [boolean | undefined, string?] {
    if (this.profile.manager.targetNotFoundIsUsable) return this.env.manager.fetchNodeStatus(checker, ip, port, hostname, context);
    return checker.getTargetStatus(ip, port, hostname);
  }

  private async forward(instance: Instance, req: GatewayRequest, context: string): Promise<GatewayResponse> {
    let node: DnsNode;
    try {
      node = instance._dns_value ?? this.profile.fields.compute(instance, this.env)[0]!;
    } catch (e) {
      return jsonResponse(500, { error_msg: (e as Error).message });
    }
    return forwardToInstance(instance, node, req, { transport: this.env.transport, log: this.env.log, proxy: this.profile.proxy, context });
  }
}

/** The driver's check of the chat request body. */
function badBody(req: GatewayRequest): GatewayResponse | undefined {
  let body: unknown;
  try {
    body = JSON.parse(req.body);
  } catch {
    return jsonResponse(400, { error_msg: "could not get parse JSON request body: invalid JSON" });
  }
  if (typeof body !== "object" || body === null || !Array.isArray((body as { messages?: unknown }).messages)) {
    return jsonResponse(400, { error_msg: 'request format doesn\'t match schema: property "messages" is required' });
  }
  return undefined;
}
