import { defineValidators } from "../../schema/validators.ts";
import { aiProxyMultiSchema } from "../plugins/ai-proxy-multi/schema.ts";
import { routeSchema } from "./route-schema.ts";

/** The Admin API's validators: defaults are filled in, as APISIX stores them. */
export const adminValidators = defineValidators({ useDefaults: true, allErrors: false, strict: false, verbose: true }, { route: routeSchema, plugin: aiProxyMultiSchema });
