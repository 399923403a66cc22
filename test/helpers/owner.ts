/**
 * A stand-in harness process for the proc tests: owns a wrapper shell (which starts a grandchild
 * and does not exec it) and a temp dir, prints them as one JSON line, then, by argv[2]:
 * "wait" (until killed), "exit" (process.exit at once) or "throw" (an uncaught error).
 */
import { ownedTempDir, reaperWatch, spawnOwned } from "../../harness/proc/index.ts";

const mode = process.argv[2] ?? "wait";
const wrapper = spawnOwned("sh", ["-c", "sleep 300 & wait"], { stdio: "ignore" });
const dir = ownedTempDir("owner");
// Give the shell time to start its grandchild, so the test can see the whole group.
await new Promise((r) => setTimeout(r, 200));
process.stdout.write(JSON.stringify({ pid: process.pid, pgid: wrapper.pid, dir: dir.path, reaper: reaperWatch.pid }) + "\n");
if (mode === "exit") process.exit(0);
if (mode === "throw") throw new Error("owner fails on purpose");
setInterval(() => undefined, 1000);
