/**
 * JSON Schema of a scenario file (YAML). Steps are checked one by one against the schema of
 * their kind, so an error can name the step.
 */

/**
 * The longest duration a scenario may give (a wait, a log window, a slow backend): one hour. Longer
 * is a typo or a run that never ends (virtual time would spin for it, real time would sleep).
 */
export const MAX_DURATION_MS = 3_600_000;

const duration = {
  description: "a duration of at most 1h (2s, 500ms, 1.5s, 1m) or whole milliseconds up to 3600000",
  anyOf: [
    { type: "integer", minimum: 0, maximum: MAX_DURATION_MS },
    { type: "string", pattern: "^\\d+(\\.\\d+)?(ms|s|m)$" },
  ],
};

const expectation = { type: "string", enum: ["reproduces", "passes"] };

const instanceRef = {
  type: "object",
  properties: { route: { type: ["string", "integer"] }, instance: { type: "integer", minimum: 0 } },
  required: ["route", "instance"],
  additionalProperties: false,
};

/** A pool entry: an instance, and optionally the version it must be at. */
const poolEntry = {
  type: "object",
  properties: {
    ...instanceRef.properties,
    version: {
      description: "current, stale, or a version (the modifiedIndex, then the nodes version if any), e.g. 21",
      anyOf: [{ type: "string", enum: ["current", "stale"] }, { type: "integer", minimum: 0 }, { type: "string", pattern: "^\\d+$" }],
    },
  },
  required: ["route", "instance"],
  additionalProperties: false,
};

const backendMode = {
  description: "a backend mode: healthy, down, {status: 500} or {slow: 2s}",
  anyOf: [
    { type: "string", enum: ["healthy", "down"] },
    { type: "object", properties: { status: { type: "integer", minimum: 100, maximum: 599 } }, required: ["status"], additionalProperties: false },
    { type: "object", properties: { slow: duration }, required: ["slow"], additionalProperties: false },
  ],
};

const logLevel = { type: "string", enum: ["debug", "info", "notice", "warn", "error"] };

export const scenarioSchema = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 1 },
    issue: { type: "string" },
    tags: { type: "array", items: { type: "string" } },
    description: { type: "string" },
    hosts: {
      type: "object",
      additionalProperties: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" }, minItems: 1 }] },
    },
    backends: {
      type: "object",
      additionalProperties: {
        type: "object",
        properties: { hosts: { type: "array", items: { type: "string" }, minItems: 1 }, mode: backendMode },
        required: ["hosts"],
        additionalProperties: false,
      },
    },
    workers: { type: "integer", minimum: 1, maximum: 16, description: "nginx worker processes (default 1)" },
    log_level: logLevel,
    steps: { type: "array", minItems: 1, items: { type: "object", minProperties: 1, maxProperties: 1 } },
    expect: { type: "object", additionalProperties: expectation, minProperties: 1 },
  },
  required: ["name", "steps", "expect"],
  additionalProperties: false,
};

const body = {};

/** JSONPath checks on a JSON document: each names a path and says one thing of the value there. */
const jsonChecks = {
  type: "array",
  minItems: 1,
  items: {
    type: "object",
    properties: {
      path: { type: "string", pattern: "^\\$" },
      equals: {},
      contains: { type: "string" },
      matches: { type: "string" },
      exists: { type: "boolean" },
    },
    required: ["path"],
    additionalProperties: false,
  },
};

const when = {
  description: "reproduces, passes, or {versions: [3.17.0, 3.16.0+fix.diff]}",
  anyOf: [
    expectation,
    { type: "object", properties: { versions: { type: "array", items: { type: "string" }, minItems: 1 } }, required: ["versions"], additionalProperties: false },
  ],
};

const count = {
  count: { type: "integer", minimum: 0 },
  atLeast: { type: "integer", minimum: 0 },
  atMost: { type: "integer", minimum: 0 },
  absent: { type: "boolean" },
};

/** A Lua module's function (the model engine knows ai-proxy-multi's construct_upstream). */
const moduleFunction = {
  module: { type: "string", minLength: 1 },
  function: { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_]*$" },
};

export const stepSchemas: Record<string, object> = {
  admin: {
    type: "object",
    properties: {
      method: { type: "string", enum: ["GET", "PUT", "POST", "PATCH", "DELETE"] },
      path: { type: "string", pattern: "^/apisix/admin/" },
      body,
      fixture: { type: "string" },
      status: { type: "integer" },
      bodyContains: { type: "string" },
      bodyMatches: { type: "string" },
      json: jsonChecks,
    },
    required: ["method", "path"],
    additionalProperties: false,
  },
  request: {
    type: "object",
    properties: {
      method: { type: "string", enum: ["GET", "POST", "PUT", "PATCH", "DELETE"] },
      path: { type: "string", pattern: "^/" },
      headers: { type: "object", additionalProperties: { type: "string" } },
      body,
      fixture: { type: "string" },
      status: { type: "integer" },
      bodyContains: { type: "string" },
      bodyMatches: { type: "string" },
      json: jsonChecks,
      instance: { type: "string" },
      worker: { type: "integer", minimum: 0 },
    },
    required: ["path"],
    additionalProperties: false,
  },
  wait: duration,
  backend: {
    type: "object",
    properties: { name: { type: "string" }, mode: backendMode },
    required: ["name", "mode"],
    additionalProperties: false,
  },
  etcd: { type: "string", enum: ["restart", "compact", "disconnect", "reconnect"] },
  dns: {
    type: "object",
    properties: {
      name: { type: "string", pattern: "^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$" },
      addresses: { type: "array", minItems: 1, items: { type: "string", minLength: 1 } },
    },
    required: ["name", "addresses"],
    additionalProperties: false,
  },
  inject: {
    type: "object",
    properties: {
      ...moduleFunction,
      raises: { type: "string" },
      returns: { type: "array", maxItems: 8 },
      after: { type: "integer", minimum: 0 },
      restore: { const: true },
    },
    required: ["function"],
    additionalProperties: false,
  },
  health: {
    type: "object",
    properties: {
      ...instanceRef.properties,
      node: { type: "string", pattern: "^[^:\\s]+:\\d{1,5}$" },
      hostname: { type: "string", minLength: 1 },
      healthy: { type: "boolean" },
    },
    required: ["route", "instance", "node", "healthy"],
    additionalProperties: false,
  },
  call: {
    type: "object",
    properties: {
      ...moduleFunction,
      arg: {},
      fixture: { type: "string" },
      times: { type: "integer", minimum: 1, maximum: 100 },
      raises: { type: "string" },
      error: { type: "string" },
      json: jsonChecks,
      bug: { type: "boolean" },
      when,
      note: { type: "string" },
    },
    required: ["function"],
    additionalProperties: false,
  },
  mark: { type: "string", minLength: 1 },
  tick: {
    type: "object",
    properties: { before: duration, after: duration, nth: { type: "integer", minimum: 1, maximum: 100 } },
    additionalProperties: false,
  },
  assert: {
    type: "object",
    properties: {
      bug: { type: "boolean" },
      when,
      note: { type: "string" },
      log: {
        type: "object",
        properties: {
          contains: { type: "string" },
          matches: { type: "string" },
          level: { type: "string", enum: ["debug", "info", "notice", "warn", "error"] },
          since: { type: "string" },
          until: { type: "string" },
          within: duration,
          ...count,
          perTick: { type: "integer", minimum: 0 },
        },
        additionalProperties: false,
      },
      received: {
        type: "object",
        properties: {
          backend: { type: "string" },
          kind: { type: "string", enum: ["probe", "chat"] },
          method: { type: "string", enum: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] },
          path: { type: "string", pattern: "^/" },
          query: { type: "object", additionalProperties: { type: "string" } },
          headers: { type: "object", additionalProperties: { type: "string" } },
          body: { type: "string" },
          bodyContains: { type: "string" },
          bodyMatches: { type: "string" },
          since: { type: "string" },
          until: { type: "string" },
          within: duration,
          ...count,
        },
        additionalProperties: false,
      },
      checkers: {
        type: "array",
        items: {
          type: "object",
          properties: {
            ...instanceRef.properties,
            exists: { type: "boolean" },
            current: { type: "boolean" },
            healthy: { type: "integer", minimum: 0 },
            unhealthy: { type: "integer", minimum: 0 },
            keptSince: { type: "string", minLength: 1 },
            rebuiltSince: { type: "string", minLength: 1 },
            targets: { type: "array", items: { type: "string", minLength: 1 } },
          },
          required: ["route", "instance"],
          additionalProperties: false,
        },
      },
      pools: {
        type: "object",
        properties: { waiting: { type: "array", items: poolEntry }, working: { type: "array", items: poolEntry } },
        additionalProperties: false,
      },
    },
    additionalProperties: false,
    anyOf: [{ required: ["log"] }, { required: ["checkers"] }, { required: ["pools"] }, { required: ["received"] }],
  },
};

export const STEP_KINDS = Object.keys(stepSchemas);
