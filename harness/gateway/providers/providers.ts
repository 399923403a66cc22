/**
 * The AI providers the reference gateway knows: where an instance goes when it has no
 * `override.endpoint`. A provider has either a static host and port or a `getNode` that computes
 * them from the instance (vertex-ai picks a regional host).
 */

export interface ProviderNode {
  scheme: string;
  host: string;
  port: number;
}

export interface InstanceLike {
  name?: unknown;
  provider?: unknown;
  provider_conf?: { project_id?: unknown; region?: unknown } | undefined;
  [key: string]: unknown;
}

export interface Provider {
  name: string;
  /** Static node, for providers without getNode. */
  host?: string;
  port?: number;
  getNode?: (instance: InstanceLike) => ProviderNode;
  /** Request path on the provider for a chat completion. */
  chatPath(instance: InstanceLike): string;
  /** The provider has no default host: the instance must set override.endpoint. */
  needsOverride?: boolean;
}

function regionOf(instance: InstanceLike): string | undefined {
  const r = instance.provider_conf?.region;
  return typeof r === "string" && r !== "" ? r : undefined;
}

export const PROVIDERS: Record<string, Provider> = {
  openai: { name: "openai", host: "api.openai.com", port: 443, chatPath: () => "/v1/chat/completions" },
  deepseek: { name: "deepseek", host: "api.deepseek.com", port: 443, chatPath: () => "/chat/completions" },
  "openai-compatible": { name: "openai-compatible", needsOverride: true, chatPath: () => "/v1/chat/completions" },
  "vertex-ai": {
    name: "vertex-ai",
    getNode(instance) {
      const region = regionOf(instance);
      return { scheme: "https", host: region ? `${region}-aiplatform.googleapis.com` : "aiplatform.googleapis.com", port: 443 };
    },
    chatPath(instance) {
      const project = String(instance.provider_conf?.project_id ?? "project");
      const region = regionOf(instance) ?? "global";
      return `/v1/projects/${project}/locations/${region}/endpoints/openapi/chat/completions`;
    },
  },
};

export const PROVIDER_NAMES = Object.keys(PROVIDERS);

export function getProvider(name: string): Provider {
  const p = PROVIDERS[name];
  if (!p) throw new Error(`ai provider: ${name} is not supported.`);
  return p;
}
