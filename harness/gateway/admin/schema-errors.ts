import type { ErrorObject } from "ajv";

/** One line for a failed JSON Schema check, in the shape of APISIX's messages. */
export function describeSchemaError(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.find((x) => x.keyword !== "if" && x.keyword !== "anyOf" && x.keyword !== "allOf") ?? errors?.[0];
  if (!e) return "invalid";
  const where = e.instancePath ? `property "${e.instancePath.slice(1).replace(/\//g, ".")}" validation failed: ` : "";
  const extra = e.keyword === "enum" ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(", ")})` : e.keyword === "additionalProperties" ? ` ("${(e.params as { additionalProperty: string }).additionalProperty}")` : "";
  return `${where}${e.message ?? "invalid"}${extra}`;
}
