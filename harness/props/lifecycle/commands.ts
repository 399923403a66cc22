/**
 * The lifecycle commands. Each keeps the model and the gateway in step, records what it did as a
 * scenario step, and checks the invariants afterwards (throwing LifecycleViolation).
 * Every write is one the Admin API must accept: a refusal is an InvalidCommand, not a finding.
 * Instance changes (add, remove, new checks) PUT the whole route (keeping its desc): a PATCH
 * would have to send the whole instances array anyway (arrays replace), and the Admin API's
 * merge structured-clones the stored route at every level (it took 13% of a profiled run when
 * these were PATCHes). PatchRoute keeps the PATCH path covered.
 */
import fc from "fast-check";
import type { Checks, Instance } from "../../gateway/plugins/ai-proxy-multi/types.ts";
import { checkInvariants } from "./invariants.ts";
import { InvalidCommand, LifecycleViolation, type LifecycleModel, type LifecycleReal, type RecordedStep, type RouteModel } from "./model.ts";
import {
  BACKEND_NAMES,
  CHAT_BODY,
  CHAT_TEXT,
  requestPath,
  namedInstance,
  ROUTE_IDS,
  routeBody,
  routeText,
  type BackendName,
  type InstanceSpec,
  type WorldSource,
} from "./world.ts";

type Cmd = fc.AsyncCommand<LifecycleModel, LifecycleReal, false>;

/** At most this many instances per route. */
export const MAX_INSTANCES = 4;

const adminPath = (id: string): string => `/apisix/admin/routes/${id}`;

async function after(m: LifecycleModel, r: LifecycleReal): Promise<void> {
  m.seq += 1;
  const v = await checkInvariants(m, r);
  if (v) throw new LifecycleViolation(v);
}

/** `text`: the body's JSON text when the caller has it already (routeText). */
async function admin(r: LifecycleReal, method: "PUT" | "PATCH" | "DELETE", id: string, body: unknown, ok: number[], text?: string): Promise<number | undefined> {
  const res = await r.target.admin(method, adminPath(id), text ?? (body === undefined ? "" : JSON.stringify(body)));
  const step: RecordedStep = { kind: "admin", method, path: adminPath(id), status: res.status };
  if (body !== undefined) step.body = body;
  r.steps.push(step);
  if (!ok.includes(res.status)) throw new InvalidCommand(`${method} ${adminPath(id)} answered ${res.status}: ${res.body}`);
  if (method === "DELETE") {
    r.modifiedIndex.delete(id);
    return undefined;
  }
  // APISIX's answer carries no modifiedIndex; the in-process target knows the write's revision.
  const mi = res.revision;
  if (mi === undefined) throw new InvalidCommand(`${method} ${adminPath(id)}: the target did not say which revision the write made`);
  r.modifiedIndex.set(id, mi);
  return mi;
}

/** The existing route a command acts on: `pick` among the existing ids (in id order). */
function routeOf(m: Readonly<LifecycleModel>, pick: number): string | undefined {
  const ids = [...m.routes.keys()].sort();
  return ids.length === 0 ? undefined : ids[pick % ids.length];
}

function named(m: LifecycleModel, spec: InstanceSpec): Instance {
  m.names += 1;
  return namedInstance(spec, `${spec.backend}-${m.names}`);
}

/** PUT a route's body (the recorded step keeps the object, the request sends its text). */
function putRoute(r: LifecycleReal, id: string, instances: Instance[], desc: string | undefined, ok: number[]): Promise<number | undefined> {
  return admin(r, "PUT", id, routeBody(id, instances, desc), ok, routeText(id, instances, desc));
}

function touched(m: LifecycleModel, route: RouteModel): void {
  route.lastWrite = m.now;
  route.writeSeq = m.seq;
  m.lastConfigChange = m.now;
}

/** PUT a route with a new instance list (and the backends they point at), then check invariants. */
async function putInstances(m: LifecycleModel, r: LifecycleReal, id: string, instances: Instance[], backends: RouteModel["backends"]): Promise<void> {
  const route = m.routes.get(id)!;
  await putRoute(r, id, instances, route.desc, [200]);
  route.instances = instances;
  route.backends = backends;
  touched(m, route);
  await after(m, r);
}

export class PutRoute implements Cmd {
  constructor(
    readonly id: string,
    readonly specs: InstanceSpec[],
  ) {}
  check(): boolean {
    return true;
  }
  async run(m: LifecycleModel, r: LifecycleReal): Promise<void> {
    const instances = this.specs.map((s) => named(m, s));
    await putRoute(r, this.id, instances, undefined, [200, 201]);
    const route: RouteModel = { instances, backends: this.specs.map((s) => s.backend), lastWrite: m.now, lastRequest: -Infinity, writeSeq: m.seq, requestSeq: -1 };
    m.routes.set(this.id, route);
    m.deleted.delete(this.id);
    touched(m, route);
    await after(m, r);
  }
  toString(): string {
    return `PutRoute(${this.id}, ${this.specs.length} instance(s): ${this.specs.map((s) => s.backend).join(",")})`;
  }
}

export class PatchRoute implements Cmd {
  constructor(
    readonly pick: number,
    readonly desc: string,
  ) {}
  check(m: Readonly<LifecycleModel>): boolean {
    return m.routes.size > 0;
  }
  async run(m: LifecycleModel, r: LifecycleReal): Promise<void> {
    const id = routeOf(m, this.pick)!;
    await admin(r, "PATCH", id, { desc: this.desc }, [200]);
    const route = m.routes.get(id)!;
    route.desc = this.desc;
    touched(m, route);
    await after(m, r);
  }
  toString(): string {
    return `PatchRoute(route #${this.pick}, desc ${JSON.stringify(this.desc)})`;
  }
}

export class DeleteRoute implements Cmd {
  constructor(readonly pick: number) {}
  check(m: Readonly<LifecycleModel>): boolean {
    return m.routes.size > 0;
  }
  async run(m: LifecycleModel, r: LifecycleReal): Promise<void> {
    const id = routeOf(m, this.pick)!;
    await admin(r, "DELETE", id, undefined, [200]);
    m.routes.delete(id);
    m.deleted.set(id, m.now);
    m.lastConfigChange = m.now;
    await after(m, r);
  }
  toString(): string {
    return `DeleteRoute(route #${this.pick})`;
  }
}

export class AddInstance implements Cmd {
  constructor(
    readonly pick: number,
    readonly spec: InstanceSpec,
  ) {}
  check(m: Readonly<LifecycleModel>): boolean {
    const id = routeOf(m, this.pick);
    return id !== undefined && m.routes.get(id)!.instances.length < MAX_INSTANCES;
  }
  async run(m: LifecycleModel, r: LifecycleReal): Promise<void> {
    const id = routeOf(m, this.pick)!;
    const route = m.routes.get(id)!;
    await putInstances(m, r, id, [...route.instances, named(m, this.spec)], [...route.backends, this.spec.backend]);
  }
  toString(): string {
    return `AddInstance(route #${this.pick}, ${this.spec.backend})`;
  }
}

export class RemoveInstance implements Cmd {
  constructor(
    readonly route: number,
    readonly pick: number,
  ) {}
  check(m: Readonly<LifecycleModel>): boolean {
    const id = routeOf(m, this.route);
    return id !== undefined && m.routes.get(id)!.instances.length >= 2;
  }
  async run(m: LifecycleModel, r: LifecycleReal): Promise<void> {
    const id = routeOf(m, this.route)!;
    const route = m.routes.get(id)!;
    const k = this.pick % route.instances.length;
    await putInstances(m, r, id, route.instances.filter((_, i) => i !== k), route.backends.filter((_, i) => i !== k));
  }
  toString(): string {
    return `RemoveInstance(route #${this.route}, instance #${this.pick})`;
  }
}

export class ChangeChecks implements Cmd {
  constructor(
    readonly route: number,
    readonly pick: number,
    readonly checks: Checks,
  ) {}
  check(m: Readonly<LifecycleModel>): boolean {
    return m.routes.size > 0;
  }
  async run(m: LifecycleModel, r: LifecycleReal): Promise<void> {
    const id = routeOf(m, this.route)!;
    const route = m.routes.get(id)!;
    const k = this.pick % route.instances.length;
    await putInstances(m, r, id, route.instances.map((ins, i) => (i === k ? { ...ins, checks: this.checks } : ins)), route.backends);
  }
  toString(): string {
    return `ChangeChecks(route #${this.route}, instance #${this.pick})`;
  }
}

const REQUEST_HEADERS = { "content-type": "application/json" };

export class Request implements Cmd {
  constructor(readonly pick: number) {}
  check(m: Readonly<LifecycleModel>): boolean {
    return m.routes.size > 0;
  }
  async run(m: LifecycleModel, r: LifecycleReal): Promise<void> {
    const id = routeOf(m, this.pick)!;
    const path = requestPath(id);
    const res = await r.target.request("POST", path, REQUEST_HEADERS, CHAT_TEXT);
    r.steps.push({ kind: "request", method: "POST", path, body: CHAT_BODY, status: res.status });
    const route = m.routes.get(id)!;
    route.lastRequest = m.now;
    route.requestSeq = m.seq;
    await after(m, r);
  }
  toString(): string {
    return `Request(route #${this.pick})`;
  }
}

export class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check(): boolean {
    return true;
  }
  async run(m: LifecycleModel, r: LifecycleReal): Promise<void> {
    await r.target.wait(this.ms);
    r.steps.push({ kind: "wait", ms: this.ms });
    m.now += this.ms;
    await after(m, r);
  }
  toString(): string {
    return `Advance(${this.ms})`;
  }
}

/** A backend stops answering (its port closes) or comes back. */
class SetBackend implements Cmd {
  constructor(
    readonly name: BackendName,
    readonly up: boolean,
  ) {}
  check(m: Readonly<LifecycleModel>): boolean {
    return m.down.has(this.name) === this.up;
  }
  async run(m: LifecycleModel, r: LifecycleReal): Promise<void> {
    const mode = this.up ? "healthy" : "down";
    await r.target.setBackend(this.name, { kind: mode });
    r.steps.push({ kind: "backend", name: this.name, mode });
    if (this.up) m.down.delete(this.name);
    else m.down.set(this.name, m.now);
    await after(m, r);
  }
  toString(): string {
    return `${this.up ? "BackendUp" : "BackendDown"}(${this.name})`;
  }
}

export class BackendDown extends SetBackend {
  constructor(name: BackendName) {
    super(name, false);
  }
}

export class BackendUp extends SetBackend {
  constructor(name: BackendName) {
    super(name, true);
  }
}

/** etcd restarts with its data: the gateway's watch resumes where it was, no object is rebuilt. */
export class EtcdRestart implements Cmd {
  check(): boolean {
    return true;
  }
  async run(m: LifecycleModel, r: LifecycleReal): Promise<void> {
    await r.target.etcd("restart");
    r.steps.push({ kind: "etcd", action: "restart" });
    await after(m, r);
  }
  toString(): string {
    return "EtcdRestart";
  }
}

/** A route outside the model's ids, written while the gateway is away so its watch falls behind. */
const MARKER_ID = "0";
const MARKER_ROUTE = { uri: "/reload-marker", upstream: { type: "roundrobin", nodes: { "127.0.0.1:1": 1 } } };

/**
 * The gateway falls behind a compaction (disconnected while two writes and a compaction happen):
 * its watch resumes into `compacted` and it reloads everything, every route object rebuilt.
 */
export class EtcdReload implements Cmd {
  check(): boolean {
    return true;
  }
  async run(m: LifecycleModel, r: LifecycleReal): Promise<void> {
    for (const action of ["disconnect"] as const) {
      await r.target.etcd(action);
      r.steps.push({ kind: "etcd", action });
    }
    for (const [method, body] of [["PUT", MARKER_ROUTE], ["DELETE", undefined]] as const) {
      const res = await r.target.admin(method, adminPath(MARKER_ID), body === undefined ? "" : JSON.stringify(body));
      const step: RecordedStep = { kind: "admin", method, path: adminPath(MARKER_ID), status: res.status };
      if (body !== undefined) step.body = body;
      r.steps.push(step);
      if (res.status >= 300) throw new InvalidCommand(`${method} ${adminPath(MARKER_ID)} answered ${res.status}: ${res.body}`);
    }
    for (const action of ["compact", "reconnect"] as const) {
      await r.target.etcd(action);
      r.steps.push({ kind: "etcd", action });
    }
    // Every route object is rebuilt from the store: a config change of every route.
    for (const route of m.routes.values()) touched(m, route);
    m.lastConfigChange = m.now;
    await after(m, r);
  }
  toString(): string {
    return "EtcdReload";
  }
}

const routeIdArb = fc.constantFrom(...ROUTE_IDS);
/** Which existing route (by position in id order) a command acts on. */
const routePickArb = fc.nat({ max: ROUTE_IDS.length - 1 });
const backendArb = fc.constantFrom(...BACKEND_NAMES);
const DESCS = ["trigger config refresh", "x", "changed", "v2"];

const putArb = (src: WorldSource, minLength: number): fc.Arbitrary<Cmd> =>
  fc.tuple(routeIdArb, fc.array(src.instance, { minLength, maxLength: 3 })).map(([id, specs]) => new PutRoute(id, specs) as Cmd);

/**
 * The PutRoute every sequence starts with (nothing happens before a route exists). It has at least
 * two instances, so shrinking never needs a second PutRoute just to get a multi-instance route.
 */
export const firstPutRouteArb = (src: WorldSource): fc.Arbitrary<Cmd> => putArb(src, 2);

/** The command arbitraries, repeated to weight them (fc.commands picks among them uniformly). */
export function commandArbs(src: WorldSource): fc.Arbitrary<Cmd>[] {
  const put = putArb(src, 1);
  const patch = fc.tuple(routePickArb, fc.constantFrom(...DESCS)).map(([id, d]) => new PatchRoute(id, d) as Cmd);
  const del = routePickArb.map((id) => new DeleteRoute(id) as Cmd);
  const add = fc.tuple(routePickArb, src.instance).map(([id, s]) => new AddInstance(id, s) as Cmd);
  const remove = fc.tuple(routePickArb, fc.nat({ max: MAX_INSTANCES - 1 })).map(([id, k]) => new RemoveInstance(id, k) as Cmd);
  const change = fc.tuple(routePickArb, fc.nat({ max: MAX_INSTANCES - 1 }), src.checks).map(([id, k, c]) => new ChangeChecks(id, k, c) as Cmd);
  const request = routePickArb.map((id) => new Request(id) as Cmd);
  // Whole seconds (in step with the manager's ticks) or any 100 ms multiple (between ticks).
  // Cross-shrinking lets an odd amount shrink to whole seconds, so a shrunk sequence does not
  // keep an extra Advance only to stay in phase with the ticks.
  const advance = fc
    .oneof({ withCrossShrink: true }, fc.integer({ min: 1, max: 5 }).map((s) => s * 1000), fc.integer({ min: 1, max: 50 }).map((n) => n * 100))
    .map((ms) => new Advance(ms) as Cmd);
  const down = backendArb.map((b) => new BackendDown(b) as Cmd);
  const up = backendArb.map((b) => new BackendUp(b) as Cmd);
  const restart = fc.constant(new EtcdRestart() as Cmd);
  const reload = fc.constant(new EtcdReload() as Cmd);
  const w = (n: number, a: fc.Arbitrary<Cmd>) => Array.from({ length: n }, () => a);
  // Requests and time are what let checkers settle (invariant 2) and probes count (invariant 3).
  return [put, patch, del, add, remove, change, ...w(4, request), ...w(5, advance), ...w(2, down), up, restart, reload];
}
