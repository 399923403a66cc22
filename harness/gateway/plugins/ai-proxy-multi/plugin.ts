import type { ConfigItem } from "../../config/config-cache.ts";
import type { Checker } from "../../healthcheck/checker.ts";
import type { HealthCheckManager, UpstreamConstructor } from "../../healthcheck/manager.ts";
import { jsonResponse, type GatewayRequest, type GatewayResponse } from "../../http-types.ts";
import type { Transport } from "../../net/transport.ts";
import type { VersionProfile } from "../../versions/profile.ts";
import type { ConstructResult } from "./construct-upstream.ts";
import { forwardToInstance } from "./forward.ts";
import { ServerPicker } from "./picker.ts";
import type { PluginEnv } from "./runtime-fields.ts";
import type { AiProxyMultiConf, DnsNode, Instance } from "./types.ts";

export const PLUGIN_NAME = "ai-proxy-multi";

export interface AiProxyMultiEnv extends PluginEnv {
  transport: Transport;
  manager: HealthCheckManager;
  fetchLatestConf(resourcePath: string): ConfigItem | undefined;
}

export { INSTANCE_HEADER } from "./forward.ts";

/**
 * The ai-proxy-multi plugin: picks an instance for each chat request (skipping instances whose
 * checker reports them unhealthy) and forwards the request to its provider. For instances with
 * checks, the request path records the resolved endpoint on the in-memory config and asks the
 * manager for a checker, exactly the coupling that breaks in #13101.
 */
export class AiProxyMulti implements UpstreamConstructor {
  private readonly pickers = new Map<string, { version: string; picker: ServerPicker }>();

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
    let body: unknown;
    try {
      body = JSON.parse(req.body);
    } catch {
      return jsonResponse(400, { error_msg: "could not get parse JSON request body: invalid JSON" });
    }
    if (typeof body !== "object" || body === null || !Array.isArray((body as { messages?: unknown }).messages)) {
      return jsonResponse(400, { error_msg: 'request format doesn\'t match schema: property "messages" is required' });
    }
    const picked = conf.instances.length === 1 ? conf.instances[0]! : this.pickTarget(route, conf);
    if (typeof picked === "string") return jsonResponse(503, { error_msg: picked });
    return this.forward(picked, req);
  }

  /** pick_target: resolve endpoints of instances with checks, fetch checkers, filter, pick. */
  private pickTarget(route: ConfigItem, conf: AiProxyMultiConf): Instance | string {
    const parent = this.env.fetchLatestConf(route.key);
    if (!parent) return "failed to fetch the parent config";
    const latest = (parent.value.plugins?.[PLUGIN_NAME] as AiProxyMultiConf | undefined)?.instances ?? [];
    const checkers = new Map<string, Checker | undefined>();
    conf.instances.forEach((instance, i) => {
      if (!instance.checks) return;
      this.profile.fields.resolve(instance, this.env);
      const resourcePath = `${route.key}#plugins['${PLUGIN_NAME}'].instances[${i}]`;
      const resourceVersion = `${route.modifiedIndex}${instance._nodes_ver ?? ""}`;
      const target = latest[i];
      if (target) this.profile.fields.copy(instance, target);
      checkers.set(instance.name, this.env.manager.fetchChecker(resourcePath, resourceVersion));
    });

    // The picker is cached under the route's version and the release's health key; health is
    // looked at only when a picker is built (create_server_picker).
    const version = `${route.modifiedIndex}${this.profile.pickerHealthKey(conf.instances, checkers)}`;
    let cached = this.pickers.get(route.key);
    if (!cached || cached.version !== version) {
      const healthy = conf.instances.filter((ins) => this.isUsable(ins, checkers.get(ins.name)));
      cached = { version, picker: new ServerPicker(healthy.length > 0 ? healthy : conf.instances) };
      this.pickers.set(route.key, cached);
    }
    return cached.picker.pick() ?? "failed to find valid upstream server, no valid instance";
  }

  private isUsable(ins: Instance, checker: Checker | undefined): boolean {
    if (!checker) return true;
    const host = ins.checks?.active?.host;
    const port = ins.checks?.active?.port;
    const nodes = this.profile.fields.nodes(ins) ?? [];
    return nodes.some((n) => this.env.manager.fetchNodeStatus(checker, n.host, port ?? n.port, host)[0] === true);
  }

  private async forward(instance: Instance, req: GatewayRequest): Promise<GatewayResponse> {
    let node: DnsNode;
    try {
      node = instance._dns_value ?? this.profile.fields.compute(instance, this.env)[0]!;
    } catch (e) {
      return jsonResponse(500, { error_msg: (e as Error).message });
    }
    return forwardToInstance(instance, node, req, this.env);
  }
}
