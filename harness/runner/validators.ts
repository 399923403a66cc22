import { defineValidators } from "../schema/validators.ts";
import { scenarioSchema, stepSchemas } from "./scenario-schema.ts";

/** A scenario file, then each step against the schema of its kind (`step:<kind>`); verbose for the schemas' descriptions. */
export const scenarioValidators = defineValidators<"scenario" | `step:${string}`>(
  { allErrors: false, strict: false, verbose: true },
  { scenario: scenarioSchema, ...Object.fromEntries(Object.entries(stepSchemas).map(([kind, s]) => [`step:${kind}`, s])) },
);
