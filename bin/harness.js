#!/usr/bin/env node
// The `harness` command. It runs the JavaScript build in dist/ that `npm ci` makes (bin/build.js,
// the `prepare` script): plain JS, and only the code the command needs, is what starts fast. When
// dist/ is missing or a source changed since it was built, it is rebuilt first; if that fails, the
// TypeScript sources run through tsx. Either way one line on stderr says so.
import { build, staleReason } from "./build.js";

const why = staleReason();
let built = why === undefined;
if (!built) {
  process.stderr.write(`harness: ${why}; rebuilding dist/\n`);
  try {
    await build();
    built = true;
  } catch (e) {
    process.stderr.write(`harness: the build failed (${e.message.split("\n")[0]}); running the TypeScript sources through tsx\n`);
  }
}
if (built) {
  await import("../dist/main.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../harness/cli/main.ts");
}
