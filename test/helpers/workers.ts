import { readFileSync } from "node:fs";
import type { InprocTarget } from "../../harness/targets/inproc.ts";

const fixture = (p: string) => readFileSync(new URL(`../../fixtures/13101/${p}`, import.meta.url), "utf8");
const CHAT = fixture("chat-request.json");
const JSON_HEADERS = { "content-type": "application/json" };

/** Crash lines of timer_working_pool_check after `since`, per pid. */
async function crashesByPid(t: InprocTarget, since: number): Promise<Record<number, number>> {
  const out: Record<number, number> = {};
  for (const l of await t.logLines()) {
    if (l.time <= since || !l.text.includes("failed to run timer_working_pool_check")) continue;
    const pid = Number(/ (\d+)#\1: /.exec(l.text)?.[1]);
    out[pid] = (out[pid] ?? 0) + 1;
  }
  return out;
}

/**
 * #13101 in two workers, for any engine: each worker serves one request, the route is PATCHed,
 * then only worker 0 gets a request. Returns each worker's pid and the crash lines per pid in
 * the 3 s after the PATCH and in the 3 s after worker 0's request.
 */
export async function crashLoopInTwoWorkers(t: InprocTarget): Promise<{ pids: number[]; afterPatch: Record<number, number>; afterRequest: Record<number, number>; workingBeforePatch: number[] }> {
  const pids = (await t.gateway.workerStates()).map((s) => s.pid);
  await t.admin("PUT", "/apisix/admin/routes/1", fixture("route.json"));
  await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 0);
  await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 1);
  await t.wait(2000);
  const workingBeforePatch = (await t.gateway.workerStates()).map((s) => Object.keys(s.pools.working).length);
  await t.admin("PATCH", "/apisix/admin/routes/1", fixture("patch.json"));
  const patched = t.now();
  await t.wait(3000);
  const afterPatch = await crashesByPid(t, patched);
  await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 0);
  const recovered = t.now();
  await t.wait(3000);
  return { pids, afterPatch, afterRequest: await crashesByPid(t, recovered), workingBeforePatch };
}

/**
 * Two workers, the instances' backend down: each worker serves a request and builds checkers.
 * Returns each worker's checker statuses after 4 s, and the pids that logged the probes' counting.
 */
export async function sharedHealthInTwoWorkers(t: InprocTarget): Promise<{ statuses: string[][]; probingPids: Set<number | undefined> }> {
  await t.admin("PUT", "/apisix/admin/routes/1", fixture("route.json"));
  await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 0);
  await t.request("POST", "/ai/chat/completions", JSON_HEADERS, CHAT, 1);
  await t.wait(4000);
  const statuses = (await t.gateway.workerStates()).map((s) => s.checkers.flatMap((c) => c.nodes.map((n) => n.status)));
  const probingPids = new Set(t.gateway.log.lines.filter((l) => l.text.includes("unhealthy TCP increment")).map((l) => l.pid));
  return { statuses, probingPids };
}
