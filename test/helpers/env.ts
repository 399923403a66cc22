import { VirtualClock } from "../../harness/gateway/clock/virtual-clock.ts";
import { ErrorLog } from "../../harness/gateway/log/error-log.ts";
import type { Instance } from "../../harness/gateway/plugins/ai-proxy-multi/types.ts";
import type { PluginEnv } from "../../harness/gateway/plugins/ai-proxy-multi/runtime-fields.ts";
import { Resolver } from "../../harness/gateway/resolver/resolver.ts";
import { defaultHosts } from "../../harness/targets/inproc.ts";

export function pluginEnv(extraHosts: Record<string, string | string[]> = {}): PluginEnv & { clock: VirtualClock } {
  const clock = new VirtualClock();
  return { clock, resolver: new Resolver({ ...defaultHosts(), ...extraHosts }), log: new ErrorLog({ clock, level: "debug" }) };
}

/** An instance as the config cache builds it from etcd: plain JSON, no runtime fields. */
export function freshInstance(overrides: Partial<Instance> = {}): Instance {
  return {
    name: "openai-a",
    provider: "openai",
    weight: 1,
    auth: { header: { Authorization: "Bearer test-key" } },
    checks: { active: { type: "http", http_path: "/", healthy: { interval: 1, successes: 1 }, unhealthy: { interval: 1, http_failures: 1 } } },
    ...overrides,
  };
}
