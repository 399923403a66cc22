import type { ErrorObject } from "ajv";

/** The type name APISIX's jsonschema reports for a value ("got number"): Lua has one number type. */
function luaType(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v === "object" ? "object" : typeof v;
}

/** Why the value itself failed, in jsonschema's words (api7/jsonschema, as APISIX's tests quote them). */
function reason(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "enum":
      return "matches none of the enum values";
    case "required":
      return `property "${String(p.missingProperty)}" is required`;
    case "type":
      return `wrong type: expected ${String(p.type)}, got ${luaType(e.data)}`;
    case "additionalProperties":
      return `additional properties forbidden, found ${String(p.additionalProperty)}`;
    case "minLength":
      return `string too short, expected at least ${String(p.limit)}, got ${typeof e.data === "string" ? e.data.length : "?"}`;
    case "maxLength":
      return `string too long, expected at most ${String(p.limit)}, got ${typeof e.data === "string" ? e.data.length : "?"}`;
    case "pattern":
      return `failed to match pattern ${JSON.stringify(p.pattern)} with ${JSON.stringify(e.data)}`;
    case "minItems":
      return `expect array to have at least ${String(p.limit)} items`;
    case "minimum":
      return `expected ${String(e.data)} to be at least ${String(p.limit)}`;
    case "maximum":
      return `expected ${String(e.data)} to be at most ${String(p.limit)}`;
    default:
      return e.message ?? "invalid";
  }
}

/**
 * One failed JSON Schema check as APISIX's jsonschema words it: each property on the way is
 * `property "x" validation failed: `, each array item `failed to validate item N: ` (1-based),
 * then the reason, e.g. `property "instances" validation failed: failed to validate item 1:
 * property "provider" validation failed: matches none of the enum values`. Ajv must run with
 * `verbose` for the reasons that quote the value.
 */
export function describeSchemaError(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.find((x) => !["if", "anyOf", "allOf", "oneOf", "then", "else"].includes(x.keyword)) ?? errors?.[0];
  if (!e) return "invalid";
  const where = e.instancePath
    .split("/")
    .slice(1)
    .map((seg) => (/^\d+$/.test(seg) ? `failed to validate item ${Number(seg) + 1}: ` : `property "${seg.replace(/~1/g, "/").replace(/~0/g, "~")}" validation failed: `))
    .join("");
  return where + reason(e);
}
