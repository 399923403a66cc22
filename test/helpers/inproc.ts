import { readFileSync } from "node:fs";
import type { BackendSpec } from "../../harness/backends/backend.ts";
import { MemoryStore } from "../../harness/gateway/config/memory-store.ts";
import { modelVersion } from "../../harness/gateway/model-engine.ts";
import { getProfile } from "../../harness/gateway/versions/index.ts";
import { InprocTarget } from "../../harness/targets/inproc.ts";

export function fixtureText(path: string): string {
  return readFileSync(new URL(`../../fixtures/${path}`, import.meta.url), "utf8");
}

export const CHAT = fixtureText("chat.json");
export const TWO_BACKENDS: BackendSpec[] = [
  { name: "a", hosts: ["a.test"], mode: { kind: "healthy" } },
  { name: "b", hosts: ["b.test"], mode: { kind: "healthy" } },
];

/** An in-process gateway of one version on a fresh in-memory store. */
export async function inproc(version: string, backends: BackendSpec[] = TWO_BACKENDS, network: "loopback" | "simulated" = "simulated", seed = 1, workers = 1): Promise<InprocTarget> {
  return InprocTarget.create({ version: modelVersion(getProfile(version)), store: new MemoryStore(), backends, network, seed, workers });
}

export function path(route: string, instance: number): string {
  return `/apisix/routes/${route}#plugins['ai-proxy-multi'].instances[${instance}]`;
}

/** `failed to run` lines logged after `since` (ms on the target's clock). */
export async function timerFailures(t: InprocTarget, since = 0): Promise<string[]> {
  return (await t.logLines()).filter((l) => l.time > since && l.text.includes("failed to run")).map((l) => l.text);
}
