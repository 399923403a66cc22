import { checksAsConfigured, constructWithPureFallback } from "../plugins/ai-proxy-multi/construct-upstream.ts";
import { endpointNode, resolveDomain } from "../plugins/ai-proxy-multi/endpoint.ts";
import type { VersionProfile } from "./profile.ts";
import { v3_16_0 } from "./releases.ts";

/**
 * Fix candidates, built on 3.16.0 (the release the bug report was filed against). Each is a
 * profile like a release, so every command can judge it.
 */

const guardedLines = { ...v3_16_0.manager.lines, guardCreate: 181, guardWorkingError: 240, guardWorkingWarn: 241 };

/** The bug report's fix direction: a pure node computation as fallback, and nil checks in both timers. */
export const suggested: VersionProfile = {
  ...v3_16_0,
  name: "suggested",
  kind: "candidate",
  summary: "3.16.0 + pure endpoint fallback in construct_upstream (keeps get_node) + nil checks in both timers",
  constructUpstream: constructWithPureFallback(v3_16_0.fields, checksAsConfigured, (instance, env) => [
    resolveDomain(endpointNode(instance, v3_16_0.parseEndpoint), env.resolver).nodes[0]!,
  ]),
  manager: { ...v3_16_0.manager, lines: guardedLines, guardsConstructResult: true },
};

/** A deliberately flawed candidate: the fallback forgets provider get_node (vertex-ai regions). */
export const fallbackWithoutGetNode: VersionProfile = {
  ...suggested,
  name: "fallback-without-get-node",
  summary: "as suggested, but the fallback ignores provider get_node, so vertex-ai regions are lost",
  constructUpstream: constructWithPureFallback(v3_16_0.fields, checksAsConfigured, (instance, env) => [
    resolveDomain(endpointNode(instance, v3_16_0.parseEndpoint, false), env.resolver).nodes[0]!,
  ]),
};
