import { expect } from "vitest";
import type { InprocTarget } from "../../harness/targets/inproc.ts";
import { CHAT, fixtureText } from "./inproc.ts";

/**
 * The stale server picker of apache/apisix#13505, as steps any engine can run: b goes down and
 * its checker marks it unhealthy; a config change (a PATCH of desc) rebuilds the checkers, which
 * inherit b's health from the shared dict without an event, so their status_ver stays 0; the
 * picker built while no checker existed (cached under "<conf crc>#0") is reused. Returns which
 * instance answered each of four requests made after that.
 */
export async function staleInstances(t: InprocTarget): Promise<string[]> {
  const json = { "content-type": "application/json" };
  expect((await t.admin("PUT", "/apisix/admin/routes/1", fixtureText("routes/two-backends.json"))).status).toBe(201);
  await t.request("POST", "/ai/chat/completions", json, CHAT);
  await t.wait(2000);
  await t.setBackend("b", { kind: "down" });
  await t.wait(2000);
  expect((await t.checkers()).flatMap((c) => c.nodes.map((n) => n.status)).sort()).toEqual(["healthy", "unhealthy"]);
  for (let i = 0; i < 2; i++) expect((await t.request("POST", "/ai/chat/completions", json, CHAT)).headers["x-harness-instance"]).toBe("a");
  await t.admin("PATCH", "/apisix/admin/routes/1", '{"desc":"config change"}');
  // The request right after the change finds no checker at the new version yet.
  await t.request("POST", "/ai/chat/completions", json, CHAT);
  await t.wait(2000);
  // The checkers are current again and still know b is down.
  expect((await t.checkers()).flatMap((c) => c.nodes.map((n) => n.status)).sort()).toEqual(["healthy", "unhealthy"]);
  const answered: string[] = [];
  for (let i = 0; i < 4; i++) answered.push((await t.request("POST", "/ai/chat/completions", json, CHAT)).headers["x-harness-instance"] ?? "?");
  return answered;
}
