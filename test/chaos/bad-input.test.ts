/**
 * Chaos: bad input and output, through the CLI. Each is refused before any work with exit 2 and
 * one line naming what is wrong (no stack trace, no raw errno dump), or, for the one failure that
 * can only happen after the work, the results are printed first.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { launch, ROOT } from "./cli.ts";

const dir = mkdtempSync(join(tmpdir(), "chaos-bad-input-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function harness(args: string[]) {
  return execa("node", ["bin/harness.js", ...args], { cwd: ROOT, reject: false, env: { NO_COLOR: "1" } });
}

const HEAD = "name: x\nbackends:\n  openai: {hosts: [api.openai.com]}\nsteps:\n";
const TAIL = "expect: {default: passes}\n";
const aFile = write("not-a-dir", "I am a file\n");

/** [what, args, the one stderr line (regexp)] */
const refused: [string, () => string[], RegExp][] = [
  ["run --out pointing at a file", () => ["run", "scenarios/13101-crash-loop-after-patch.yaml", "--reporter", "console,junit", "--out", aFile], /^harness: --out .*not-a-dir: cannot write reports there: it is a file, or under one$/],
  ["repro --out where no folder can be made (/proc; Node's recursive mkdir never returned there)", () => ["repro", "--store", "memory", "--out", "/proc/harness-reports"], /^harness: --out \/proc\/harness-reports: cannot write reports there: cannot create it \(ENOENT\)$/],
  ["props --out under a file", () => ["props", "--runs", "5", "--out", join(aFile, "sub")], /^harness: --out .*not-a-dir\/sub: cannot write reports there: it is a file, or under one$/],
  [
    "an unreadable scenario (a directory named *.yaml)",
    () => {
      const folder = join(dir, "folder");
      mkdirSync(join(folder, "broken.yaml"), { recursive: true });
      return ["run", folder, "--store", "memory"];
    },
    /^harness: .*broken\.yaml:1:1: cannot read the file: EISDIR$/,
  ],
  ["a fixture path that climbs out to /etc/passwd", () => ["run", write("escape.yaml", `${HEAD}  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: ../../../../etc/passwd}\n${TAIL}`), "--store", "memory"], /^harness: .*escape\.yaml:5:\d+: steps\[0\]\.admin\.fixture: fixture \.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd is outside the scenario's folder/],
  ["body and fixture in one step", () => ["run", write("both.yaml", `${HEAD}  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: 13101/route.json, body: {uri: /x}}\n${TAIL}`), "--store", "memory"], /^harness: .*both\.yaml:5:\d+: steps\[0\]\.admin\.fixture: give body or fixture, not both$/],
  ["a wait that never ends (99999999999999s)", () => ["run", write("forever.yaml", `${HEAD}  - wait: 99999999999999s\n${TAIL}`), "--store", "memory"], /^harness: .*forever\.yaml:5:11: steps\[0\]\.wait: 99999999999999s is too long: a scenario's durations are at most 1h \(3600000 ms\)$/],
  ["--concurrency 0", () => ["run", "scenarios/", "--concurrency", "0"], /^harness: --concurrency: expected a whole number >= 1, got "0"$/],
  ["--versions all,,", () => ["run", "scenarios/", "--versions", "all,,"], /^harness: --versions: empty entry in "all,,"$/],
];

describe.concurrent("refused before any work: exit 2 and one line", () => {
  it.each(refused)("%s", async (_what, args, line) => {
    const res = await harness(args());
    expect(res.exitCode, res.stderr).toBe(2);
    expect(res.stderr.trim().split("\n"), res.stderr).toHaveLength(1);
    expect(res.stderr.trim()).toMatch(line);
    expect(res.stderr).not.toMatch(/root:x:0:0|\n\s+at /);
    expect(res.stdout).toBe("");
  });

  it("the same scenario given twice (and through its folder) runs once", async () => {
    const folder = join(dir, "once");
    mkdirSync(folder);
    const file = write("once/only.yaml", `${HEAD}  - mark: here\n${TAIL}`);
    const res = await harness(["run", file, folder, file, "--store", "memory", "--versions", "3.18.0"]);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^\[1\/1\] ok /m);
    expect(res.stdout).toContain("1 passed, 0 failed");
  });

  it("an --out that breaks during the run: the results are printed first, then one line, exit 2", async () => {
    const out = join(dir, "vanishing-out");
    const h = launch(["run", "scenarios/13101-create-timer-crash.yaml", "--versions", "3.18.0", "--target", "serve", "--store", "memory", "--reporter", "console,junit", "--out", out]);
    await h.waitFor(/^running /m);
    rmSync(out, { recursive: true, force: true });
    writeFileSync(out, "now a file\n");
    const res = await h.sub;
    expect(res.exitCode, h.out()).toBe(2);
    expect(res.stdout).toContain("1 passed, 0 failed");
    expect(res.stderr.trim().split("\n").at(-1)).toMatch(/^harness: --out .*vanishing-out: could not write the reports: (ENOTDIR|EEXIST)$/);
    expect(readdirSync(dir)).toContain("vanishing-out");
  });
});
