// Preloaded by the benchmark (node --require): writes this process's peak resident set size, in
// KiB, to $HARNESS_BENCH_RSS_FILE when it exits.
"use strict";
const { writeFileSync } = require("node:fs");

process.on("exit", () => {
  writeFileSync(process.env.HARNESS_BENCH_RSS_FILE, String(process.resourceUsage().maxRSS));
});
