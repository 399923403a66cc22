import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { writeJson } from "../../harness/report/json.ts";
import { fixtureRuns, fixtureSuite } from "./fixture.ts";

describe("writeJson", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("writes the whole suite as pretty JSON that reads back equal", () => {
    dir = mkdtempSync(join(tmpdir(), "json-"));
    const file = join(dir, "nested", "results.json");
    writeJson(fixtureSuite(), file);
    const text = readFileSync(file, "utf8");
    expect(text.startsWith('{\n  "startedAt": "2025-06-01T10:00:00.000Z",\n')).toBe(true);
    expect(JSON.parse(text)).toEqual(fixtureSuite());
  });

  it("keeps observed Maps, Sets, bigints and Errors as plain data instead of {} or a throw", () => {
    dir = mkdtempSync(join(tmpdir(), "json-"));
    const runs = fixtureRuns();
    runs[0]!.steps[2]!.observed = {
      checker: new Map([["openai-a", "unhealthy"]]),
      nodes: new Set(["127.0.0.2:443"]),
      bytes: 10n,
      error: new Error("connection refused"),
    };
    const file = join(dir, "results.json");
    writeJson(fixtureSuite(runs), file);
    expect(JSON.parse(readFileSync(file, "utf8")).runs[0].steps[2].observed).toEqual({
      checker: { "openai-a": "unhealthy" },
      nodes: ["127.0.0.2:443"],
      bytes: "10",
      error: { name: "Error", message: "connection refused" },
    });
  });
});
