import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A copy of the project as a fresh clone has it (no dist/), sharing node_modules. */
const copy = mkdtempSync(join(tmpdir(), "harness-launcher-"));
for (const d of ["bin", "harness", "fixtures", "scenarios", "package.json"]) cpSync(join(ROOT, d), join(copy, d), { recursive: true });
symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
afterAll(() => rmSync(copy, { recursive: true, force: true }));

function harness(args: string[]) {
  return execa("node", ["bin/harness.js", ...args, ...(args[0] === "repro" ? ["--out", join(copy, "reports")] : [])], { cwd: copy, reject: false, env: { NO_COLOR: "1" } });
}

const REBUILD = /^harness: (.*); rebuilding dist\/$/m;

describe("bin/harness.js runs the build in dist/, and never a stale one", () => {
  it("builds dist/ when there is none, then runs the built CLI as a user would", async () => {
    expect(existsSync(join(copy, "dist"))).toBe(false);
    const res = await harness(["repro", "--store", "memory"]);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(REBUILD.exec(res.stderr)?.[1]).toBe("no build in dist/");
    expect(existsSync(join(copy, "dist", "main.js"))).toBe(true);
    const rows = res.stdout.split("\n");
    expect(rows[1]).toMatch(/^3\.15\.0\s+REPRODUCED\s+3\s+yes\s+.*healthcheck_manager\.lua:292: failed to run timer_working_pool_check:/);
    expect(rows[4]).toMatch(/^3\.18\.0\s+NOT REPRODUCED\s+0\s+yes\s+-$/);

    const again = await harness(["repro", "--store", "memory", "--versions", "3.16.0"]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(REBUILD);
    expect(again.stderr.split("\n")[0]).toBe("store: in-memory (requested: prefer memory)");
  });

  it("rebuilds when a source changed since the build, so the change is what runs", async () => {
    await harness(["--help"]);
    const file = join(copy, "harness/cli/repro.ts");
    writeFileSync(file, readFileSync(file, "utf8").replace("reproduce apache/apisix#13101 (", "reproduce (changed after the build) apache/apisix#13101 ("));
    const res = await harness(["repro", "--help"]);
    expect(res.exitCode).toBe(0);
    expect(REBUILD.exec(res.stderr)?.[1]).toBe("harness/cli/repro.ts changed since the last build");
    expect(res.stdout).toContain("reproduce (changed after the build) apache/apisix#13101");
    const schema = join(copy, "harness/gateway/admin/route-schema.ts");
    writeFileSync(schema, readFileSync(schema, "utf8") + "\n");
    expect(REBUILD.exec((await harness(["--help"])).stderr)?.[1]).toBe("harness/gateway/admin/route-schema.ts changed since the last build");
    expect((await harness(["--help"])).stderr).toBe("");
  });

  it("runs the TypeScript sources through tsx, saying so, when dist/ cannot be built", async () => {
    rmSync(join(copy, "dist"), { recursive: true, force: true });
    writeFileSync(join(copy, "dist"), "a file where the build directory should be\n");
    try {
      const res = await harness(["repro", "--store", "memory", "--versions", "3.17.0"]);
      expect(res.exitCode, res.stderr).toBe(0);
      expect(res.stderr).toMatch(/^harness: the build failed \(.*\); running the TypeScript sources through tsx$/m);
      expect(res.stdout).toMatch(/^3\.17\.0\s+NOT REPRODUCED\s+0\s+yes\s+-$/m);
    } finally {
      rmSync(join(copy, "dist"), { force: true });
    }
  });
});
