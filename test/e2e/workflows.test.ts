import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface Workflow {
  on: Record<string, { paths?: string[] } | null>;
  env?: Record<string, string>;
  jobs: Record<string, { container?: string; steps: { name?: string; run?: string; uses?: string; with?: Record<string, string> }[] }>;
}

const load = (path: string) => parse(readFileSync(ROOT + path, "utf8")) as Workflow;

describe("GitHub Actions workflows", () => {
  it("this project's CI runs .ci/run, the same script as every other CI of the project", () => {
    const wf = load(".github/workflows/ci.yml");
    const steps = wf.jobs.test!.steps;
    expect(steps.at(-1)!.run).toBe("bash .ci/run");
    expect(wf.jobs.test!.container).toContain("bookworm");
  });

  it("the fork example runs the lua engine on the working tree, uploads the reports it asks for, and triggers on the health-check code", () => {
    const wf = load("docs/ci/apisix-healthcheck-harness.yml");
    expect(wf.on.pull_request!.paths).toEqual(expect.arrayContaining(["apisix/healthcheck_manager.lua", "apisix/plugins/ai-proxy-multi.lua"]));
    const steps = wf.jobs.scenarios!.steps;
    const run = steps.find((s) => s.run?.includes("bin/harness.js run"))!.run!;
    expect(run).toMatch(/--engine lua --apisix \.\.\/apisix --lua-deps \.\.\/lua-deps --versions worktree/);
    const reporters = /--reporter (\S+)/.exec(run)![1]!.split(",");
    expect(reporters).toEqual(expect.arrayContaining(["junit", "markdown", "html"]));
    const out = /--out \.\.\/(\S+)/.exec(run)![1]!;
    const upload = steps.find((s) => s.uses?.startsWith("actions/upload-artifact"))!;
    expect(upload.with!.path).toBe(`${out}/`);
  });
});
