import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { loadScenario, ScenarioError } from "../../harness/runner/load.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "harness-bad-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function errorOf(file: string): ScenarioError {
  try {
    loadScenario(file);
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error(`${file} was accepted`);
}

const GOOD_HEAD = `name: x
backends:
  a: {hosts: [a.test]}
steps:
  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: routes/two-backends.json}
`;

describe("scenario file mistakes name the file, line and column, and what was expected", () => {
  const cases: [string, string, number, number, string][] = [
    ["malformed.yaml", "name: x\nsteps:\n  - wait: [1s\nexpect: {default: passes}\n", 4, 1, "malformed YAML"],
    ["unknown-step.yaml", GOOD_HEAD + "  - sleep: 2s\nexpect: {default: passes}\n", 6, 5, 'steps[1].sleep: unknown step "sleep" (expected one of admin, request, wait, backend, etcd, dns, inject, health, call, mark, tick, assert)'],
    ["unknown-field.yaml", GOOD_HEAD + "  - request: {path: /ai/x, colour: red}\nexpect: {default: passes}\n", 6, 28, 'steps[1].request.colour: unknown field "colour"'],
    ["wrong-type.yaml", GOOD_HEAD + "  - wait: soon\nexpect: {default: passes}\n", 6, 11, "steps[1].wait: expected a duration of at most 1h (2s, 500ms, 1.5s, 1m) or whole milliseconds up to 3600000"],
    ["bad-method.yaml", GOOD_HEAD.replace("method: PUT", "method: PUSH") + "expect: {default: passes}\n", 5, 21, "steps[0].admin.method: expected one of GET, PUT, POST, PATCH, DELETE"],
    ["missing-fixture.yaml", GOOD_HEAD.replace("routes/two-backends.json", "routes/nope.json") + "expect: {default: passes}\n", 5, 65, "steps[0].admin.fixture: fixture not found: routes/nope.json"],
    ["unknown-version.yaml", GOOD_HEAD + "expect: {default: passes, 3.19.0: reproduces}\n", 6, 27, 'expect.3.19.0: unknown version "3.19.0"'],
    ["no-steps.yaml", "name: x\nexpect: {default: passes}\n", 1, 1, 'missing field "steps"'],
    ["unknown-backend.yaml", GOOD_HEAD + "  - backend: {name: z, mode: down}\nexpect: {default: passes}\n", 6, 21, 'steps[1].backend.name: unknown backend "z" (defined: a)'],
    ["bad-mark.yaml", GOOD_HEAD + "  - assert: {log: {contains: x, since: later}}\nexpect: {default: passes}\n", 6, 40, 'steps[1].assert.log.since: no earlier mark named "later"'],
    // Durations that would never end: the virtual clock spun on them, real time slept 1 ms.
    ["wait-forever.yaml", GOOD_HEAD + "  - wait: 99999999999999s\nexpect: {default: passes}\n", 6, 11, "steps[1].wait: 99999999999999s is too long: a scenario's durations are at most 1h (3600000 ms)"],
    ["wait-inf.yaml", GOOD_HEAD + "  - wait: .inf\nexpect: {default: passes}\n", 6, 11, "steps[1].wait: expected a duration of at most 1h"],
    ["wait-1e20.yaml", GOOD_HEAD + "  - wait: 1e20\nexpect: {default: passes}\n", 6, 11, "steps[1].wait: expected a duration of at most 1h"],
    ["wait-serve-overflow.yaml", GOOD_HEAD + "  - wait: 3000000s\nexpect: {default: passes}\n", 6, 11, "steps[1].wait: 3000000s is too long"],
    ["within-long.yaml", GOOD_HEAD + "  - assert: {log: {contains: x, within: 61m}}\nexpect: {default: passes}\n", 6, 41, "steps[1].assert.log.within: 61m is too long"],
    ["slow-long.yaml", GOOD_HEAD.replace("a: {hosts: [a.test]}", "a: {hosts: [a.test], mode: {slow: 61m}}") + "expect: {default: passes}\n", 3, 37, "backends.a.mode.slow: 61m is too long"],
    // Fixtures are read only from fixtures/ or the scenario's own folder.
    ["fixture-escape.yaml", GOOD_HEAD.replace("routes/two-backends.json", "../../../../etc/passwd") + "expect: {default: passes}\n", 5, 65, "steps[0].admin.fixture: fixture ../../../../etc/passwd is outside the scenario's folder"],
    ["fixture-climb.yaml", GOOD_HEAD.replace("routes/two-backends.json", "./../../../etc/passwd") + "expect: {default: passes}\n", 5, 65, "steps[0].admin.fixture: fixture ./../../../etc/passwd is outside the scenario's folder"],
    ["fixture-absolute.yaml", GOOD_HEAD.replace("routes/two-backends.json", "/etc/passwd") + "expect: {default: passes}\n", 5, 65, "steps[0].admin.fixture: fixture /etc/passwd is outside fixtures/"],
    // The steps and checks that say what APISIX's own ai-proxy-multi tests say.
    ["log-level.yaml", GOOD_HEAD.replace("name: x\n", "name: x\nlog_level: verbose\n") + "expect: {default: passes}\n", 2, 12, "log_level: expected one of debug, info, notice, warn, error"],
    ["body-regex.yaml", GOOD_HEAD + '  - admin: {method: GET, path: /apisix/admin/routes/1, bodyMatches: "("}\nexpect: {default: passes}\n', 6, 69, "steps[1].admin.bodyMatches: bad regular expression"],
    ["json-two.yaml", GOOD_HEAD + "  - admin: {method: GET, path: /apisix/admin/routes/1, json: [{path: $.a, equals: 1, contains: x}]}\nexpect: {default: passes}\n", 6, 63, "steps[1].admin.json[0]: give one of equals, contains, matches, exists (got equals, contains)"],
    ["json-path.yaml", GOOD_HEAD + '  - request: {path: /ai/x, json: [{path: "$.a[0", exists: true}]}\nexpect: {default: passes}\n', 6, 35, "steps[1].request.json[0]: JSONPath $.a[0: unbalanced brackets"],
    ["dns-off-loopback.yaml", GOOD_HEAD + "  - dns: {name: x.test, addresses: [127.0.0.9, 10.0.0.1]}\nexpect: {default: passes}\n", 6, 48, "steps[1].dns.addresses[1]: 10.0.0.1 is not a loopback address"],
    ["dns-unknown.yaml", GOOD_HEAD + "  - dns: {name: x.test, addresses: [zz]}\nexpect: {default: passes}\n", 6, 37, 'steps[1].dns.addresses[0]: "zz" is neither a loopback address nor a backend (defined: a)'],
    ["inject-nothing.yaml", GOOD_HEAD + "  - inject: {function: construct_upstream}\nexpect: {default: passes}\n", 6, 13, 'steps[1].inject: an inject step needs "raises" or "returns"'],
    ["inject-returns.yaml", GOOD_HEAD + "  - inject: {function: construct_upstream, returns: [1, boom]}\nexpect: {default: passes}\n", 6, 54, "steps[1].inject.returns[0]: the first value returned must be a table or null (nil)"],
    ["inject-restore.yaml", GOOD_HEAD + "  - inject: {function: construct_upstream, restore: true, raises: x}\nexpect: {default: passes}\n", 6, 59, 'steps[1].inject.raises: a restore takes only module and function, not "raises"'],
    ["health-port.yaml", GOOD_HEAD + "  - health: {route: 1, instance: 0, node: a.test, healthy: false}\nexpect: {default: passes}\n", 6, 43, "steps[1].health.node: expected a value matching"],
    ["health-node.yaml", GOOD_HEAD + '  - health: {route: 1, instance: 0, node: "nowhere.test:80", healthy: false}\nexpect: {default: passes}\n', 6, 43, 'steps[1].health.node: "nowhere.test" is neither an address, a backend (a) nor a host name the scenario knows'],
    ["call-both.yaml", GOOD_HEAD + "  - call: {function: construct_upstream, arg: null, raises: x, error: y}\nexpect: {default: passes}\n", 6, 64, 'steps[1].call.error: a call raises or returns an error, not both'],
    ["received-backend.yaml", GOOD_HEAD + "  - assert: {received: {backend: z, kind: probe}}\nexpect: {default: passes}\n", 6, 34, 'steps[1].assert.received.backend: unknown backend "z" (defined: a)'],
    ["received-since.yaml", GOOD_HEAD + "  - assert: {received: {kind: probe, since: later}}\nexpect: {default: passes}\n", 6, 45, 'steps[1].assert.received.since: no earlier mark named "later"'],
    // Checker identity and targets, pool versions, ticks and per-tick counts.
    ["kept-no-mark.yaml", GOOD_HEAD + "  - assert: {checkers: [{route: 1, instance: 0, keptSince: later}]}\nexpect: {default: passes}\n", 6, 60, 'steps[1].assert.checkers[0].keptSince: no earlier mark named "later"'],
    ["kept-and-rebuilt.yaml", GOOD_HEAD + "  - mark: m\n  - assert: {checkers: [{route: 1, instance: 0, keptSince: m, rebuiltSince: m}]}\nexpect: {default: passes}\n", 7, 63, 'steps[2].assert.checkers[0].rebuiltSince: a checker is kept or rebuilt since a mark: give "keptSince" or "rebuiltSince", not both'],
    ["kept-not-exists.yaml", GOOD_HEAD + "  - mark: m\n  - assert: {checkers: [{route: 1, instance: 0, exists: false, keptSince: m}]}\nexpect: {default: passes}\n", 7, 64, 'steps[2].assert.checkers[0].keptSince: "exists: false" says there is no checker: "keptSince" asks about one'],
    ["target-shape.yaml", GOOD_HEAD + '  - assert: {checkers: [{route: 1, instance: 0, targets: ["a.test"]}]}\nexpect: {default: passes}\n', 6, 59, 'steps[1].assert.checkers[0].targets[0]: expected "node:port" or "hostname(node:port)"'],
    ["target-port.yaml", GOOD_HEAD + '  - assert: {checkers: [{route: 1, instance: 0, targets: ["a:0"]}]}\nexpect: {default: passes}\n', 6, 59, "steps[1].assert.checkers[0].targets[0]: port 0 is out of range (1-65535)"],
    ["target-off-loopback.yaml", GOOD_HEAD + '  - assert: {checkers: [{route: 1, instance: 0, targets: ["x.test(10.0.0.1:80)"]}]}\nexpect: {default: passes}\n', 6, 59, "steps[1].assert.checkers[0].targets[0]: 10.0.0.1 is not a loopback address"],
    ["target-unknown.yaml", GOOD_HEAD + '  - assert: {checkers: [{route: 1, instance: 0, targets: ["a:80", "zz:80"]}]}\nexpect: {default: passes}\n', 6, 67, 'steps[1].assert.checkers[0].targets[1]: "zz" is neither an address, a backend (a) nor a host name the scenario knows'],
    ["pool-version.yaml", GOOD_HEAD + "  - assert: {pools: {working: [{route: 1, instance: 0, version: newest}]}}\nexpect: {default: passes}\n", 6, 65, "steps[1].assert.pools.working[0].version: expected current, stale, or a version"],
    ["tick-neither.yaml", GOOD_HEAD + "  - tick: {nth: 2}\nexpect: {default: passes}\n", 6, 11, 'steps[1].tick: a tick step needs "before" or "after" (one of them)'],
    ["tick-both.yaml", GOOD_HEAD + "  - tick: {before: 1ms, after: 1ms}\nexpect: {default: passes}\n", 6, 11, 'steps[1].tick: a tick step needs "before" or "after" (one of them)'],
    ["tick-long.yaml", GOOD_HEAD + "  - tick: {after: 1s}\nexpect: {default: passes}\n", 6, 19, "steps[1].tick.after: expected less than the manager's 1 s tick period, got 1000 ms"],
    ["tick-before-0.yaml", GOOD_HEAD + "  - tick: {before: 0}\nexpect: {default: passes}\n", 6, 20, 'steps[1].tick.before: 0 ms before a tick is the tick itself'],
    ["tick-nth.yaml", GOOD_HEAD + "  - tick: {after: 1ms, nth: 0}\nexpect: {default: passes}\n", 6, 29, "steps[1].tick.nth: must be >= 1"],
    ["per-tick-count.yaml", GOOD_HEAD + "  - assert: {log: {contains: x, perTick: 1, count: 3}}\nexpect: {default: passes}\n", 6, 45, 'steps[1].assert.log.count: "perTick" already says how many lines each tick has: give it without "count"'],
    ["until-no-mark.yaml", GOOD_HEAD + "  - assert: {log: {contains: x, until: later}}\nexpect: {default: passes}\n", 6, 40, 'steps[1].assert.log.until: no earlier mark named "later"'],
    ["until-before-since.yaml", GOOD_HEAD + "  - mark: one\n  - mark: two\n  - assert: {log: {contains: x, since: two, until: one}}\nexpect: {default: passes}\n", 8, 52, 'steps[3].assert.log.until: mark "one" is not after mark "two": the window would be empty'],
    ["until-and-within.yaml", GOOD_HEAD + "  - mark: one\n  - assert: {received: {kind: probe, until: one, within: 1s}}\nexpect: {default: passes}\n", 7, 50, 'steps[2].assert.received.within: give "until" or "within" for the window\'s end, not both'],
    ["body-and-fixture.yaml", GOOD_HEAD.replace("fixture: routes/two-backends.json", "fixture: routes/two-backends.json, body: {uri: /x}") + "expect: {default: passes}\n", 5, 65, "steps[0].admin.fixture: give body or fixture, not both"],
  ];
  it.each(cases)("%s", (name, text, line, col, message) => {
    const e = errorOf(write(name, text));
    expect([e.line, e.col]).toEqual([line, col]);
    expect(e.detail).toContain(message);
    expect(e.message.startsWith(`${relative(process.cwd(), join(dir, name))}:${line}:${col}: `)).toBe(true);
  });
});

describe("fixtures cannot lead out of their folders", () => {
  it("a symlink in the scenario's folder that points elsewhere is refused, not read", () => {
    const sub = join(dir, "linked");
    mkdirSync(sub, { recursive: true });
    symlinkSync("/etc/passwd", join(sub, "passwd.json"));
    const e = errorOf(write("linked/uses-link.yaml", GOOD_HEAD.replace("routes/two-backends.json", "./passwd.json") + "expect: {default: passes}\n"));
    expect(e.detail).toBe("steps[0].admin.fixture: fixture ./passwd.json links outside the scenario's folder");
  });

  it("a ./ fixture inside the scenario's folder is read", () => {
    const sub = join(dir, "local");
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, "route.json"), '{"uri": "/x"}');
    const s = loadScenario(write("local/uses-local.yaml", GOOD_HEAD.replace("routes/two-backends.json", "./route.json") + "expect: {default: passes}\n"));
    expect(s.steps[0]).toMatchObject({ kind: "admin", body: '{"uri": "/x"}' });
  });
});

describe("harness run with bad input exits 2 with one line", () => {
  function run(args: string[]) {
    return execa("node", ["bin/harness.js", "run", ...args], { cwd: ROOT, reject: false });
  }

  it("a bad scenario file, an unknown version, an unknown target, an unreachable external target", async () => {
    const closed = await closedPort();
    const bad = write("cli-bad.yaml", GOOD_HEAD + "  - sleep: 2s\nexpect: {default: passes}\n");
    const badInject = write("cli-bad-inject.yaml", GOOD_HEAD + "  - inject: {function: construct_upstream, returns: [1]}\nexpect: {default: passes}\n");
    const results = await Promise.all([
      run([bad]),
      run(["scenarios", "--versions", "3.99.0"]),
      run(["scenarios", "--target", "kubernetes"]),
      run(["scenarios", "--target", "external", "--versions", "3.16.0", "--admin-url", `http://127.0.0.1:${closed}`, "--gateway-url", "http://127.0.0.1:1", "--control-url", "http://127.0.0.1:1"]),
      run(["scenarios", "--target", "external", "--versions", "3.16.0", "--admin-url", "http://10.0.0.1:9180", "--gateway-url", "http://127.0.0.1:1", "--control-url", "http://127.0.0.1:1"]),
      run([badInject]),
    ]);
    const lines = results.map((r) => r.stderr.trim());
    expect(results.map((r) => r.exitCode)).toEqual([2, 2, 2, 2, 2, 2]);
    expect(lines[0]).toMatch(/^harness: .*cli-bad\.yaml:6:5: steps\[1\]\.sleep: unknown step "sleep"/);
    expect(lines[1]).toBe('harness: --versions: unknown version "3.99.0" (known: 3.15.0, 3.16.0, 3.17.0, 3.18.0, suggested, fallback-without-get-node)');
    expect(lines[2]).toBe('harness: --target: expected inproc, serve or external, got "kubernetes"');
    expect(lines[3]).toMatch(new RegExp(`^harness: --admin-url: http://127\\.0\\.0\\.1:${closed} does not answer \\(.*ECONNREFUSED.*\\)$`));
    expect(lines[4]).toBe("harness: --admin-url: http://10.0.0.1:9180 is not on loopback (127.0.0.0/8, ::1); the harness sends no traffic elsewhere");
    expect(lines[5]).toMatch(/^harness: .*cli-bad-inject\.yaml:6:54: steps\[1\]\.inject\.returns\[0\]: the first value returned must be a table or null/);
    for (const l of lines) expect(l.split("\n")).toHaveLength(1);
  });
});
