import { PROVIDER_NAMES } from "../../providers/providers.ts";

/**
 * JSON Schema of the ai-proxy-multi plugin config, written from APISIX's documented schema: the
 * parts the health-check path depends on are exact, the rest is permissive. Unknown instance
 * properties are allowed (the bug report's top-level "endpoint" is one).
 */

const statusList = { type: "array", minItems: 1, uniqueItems: true, items: { type: "integer", minimum: 200, maximum: 599 } };
const counter = { type: "integer", minimum: 1, maximum: 254 };

export const activeChecksSchema = {
  type: "object",
  properties: {
    type: { type: "string", enum: ["http", "https", "tcp"], default: "http" },
    timeout: { type: "number", default: 1 },
    concurrency: { type: "integer", default: 10 },
    host: { type: "string", pattern: "^\\*?[0-9a-zA-Z-._\\[\\]:]+$" },
    port: { type: "integer", minimum: 1, maximum: 65535 },
    http_path: { type: "string", default: "/" },
    https_verify_certificate: { type: "boolean", default: true },
    healthy: {
      type: "object",
      properties: {
        interval: { type: "integer", minimum: 1, default: 1 },
        http_statuses: { ...statusList, default: [200, 302] },
        successes: { ...counter, default: 2 },
      },
    },
    unhealthy: {
      type: "object",
      properties: {
        interval: { type: "integer", minimum: 1, default: 1 },
        http_statuses: { ...statusList, default: [429, 404, 500, 501, 502, 503, 504, 505] },
        http_failures: { ...counter, default: 5 },
        tcp_failures: { ...counter, default: 2 },
        timeouts: { ...counter, default: 3 },
      },
    },
    req_headers: { type: "array", minItems: 1, uniqueItems: true, items: { type: "string" } },
  },
};

const authSchema = {
  type: "object",
  properties: {
    header: { type: "object", additionalProperties: { type: "string" } },
    query: { type: "object", additionalProperties: { type: "string" } },
    gcp: { type: "object" },
  },
};

const instanceSchema = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 1, maxLength: 100 },
    provider: { type: "string", enum: PROVIDER_NAMES },
    priority: { type: "integer", default: 0 },
    weight: { type: "integer", minimum: 0 },
    auth: authSchema,
    options: { type: "object" },
    // No pattern: APISIX checks the endpoint by parsing it in check_schema ("invalid endpoint").
    override: { type: "object", properties: { endpoint: { type: "string" } } },
    provider_conf: {
      type: "object",
      properties: { project_id: { type: "string" }, region: { type: "string" } },
      required: ["project_id", "region"],
    },
    checks: { type: "object", properties: { active: activeChecksSchema }, required: ["active"] },
  },
  required: ["name", "provider", "auth", "weight"],
  allOf: [
    {
      if: { properties: { provider: { const: "vertex-ai" } }, required: ["provider"] },
      then: { oneOf: [{ required: ["provider_conf"] }, { required: ["override"] }] },
    },
    {
      if: { properties: { provider: { const: "openai-compatible" } }, required: ["provider"] },
      then: { required: ["override"], properties: { override: { required: ["endpoint"] } } },
    },
  ],
};

export const aiProxyMultiSchema = {
  type: "object",
  properties: {
    balancer: {
      type: "object",
      properties: {
        algorithm: { type: "string", enum: ["chash", "roundrobin"], default: "roundrobin" },
        hash_on: { type: "string" },
        key: { type: "string" },
      },
      default: {},
    },
    instances: { type: "array", minItems: 1, items: instanceSchema },
    fallback_strategy: {},
    timeout: { type: "integer", minimum: 1, default: 30000 },
    keepalive: { type: "boolean", default: true },
    ssl_verify: { type: "boolean", default: true },
    logging: { type: "object" },
  },
  required: ["instances"],
};
