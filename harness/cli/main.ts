import { Command, CommanderError } from "commander";
import { stopAllOwned } from "../proc/index.ts";
import { registerDiff } from "./diff.ts";
import { registerImport } from "./import.ts";
import { Interrupted, interruptOnSignals } from "./interrupt.ts";
import { registerProps } from "./props.ts";
import { registerRepro } from "./repro.ts";
import { registerRun } from "./run.ts";
import { registerServe } from "./serve.ts";
import { EXIT, UsageError, type CommandContext } from "./usage.ts";

// Installed before anything starts, so a Ctrl-C at any point is an orderly stop.
const interruption = interruptOnSignals();
const ctx: CommandContext = { signal: interruption.signal };

const program = new Command();
program
  .name("harness")
  .description("Simulation and regression harness for Apache APISIX ai-proxy-multi health checks (apache/apisix#13101)")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

registerRepro(program, ctx);
registerRun(program, ctx);
registerServe(program, ctx);
registerProps(program, ctx);
registerImport(program, ctx);
registerDiff(program, ctx);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // --help and --version exit 0; every other parse failure is bad usage.
    process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else if (e instanceof Interrupted) {
    // The signal handler already said so; the command stopped what it started.
  } else if (e instanceof UsageError) {
    process.stderr.write(`harness: ${e.message}\n`);
    process.exitCode = EXIT.usage;
  } else {
    process.stderr.write(`harness: ${(e as Error).message}\n`);
    process.exitCode = EXIT.failed;
  }
}
// Whatever a command left running is stopped before the process ends.
await stopAllOwned();
if (interruption.signal.aborted) process.exitCode = (interruption.signal.reason as Interrupted).exitCode;
// Exit now rather than when the event loop drains: nothing of the command's is left (its
// processes and temp dirs went with stopAllOwned), so whatever a library may still hold (a timer,
// a kept-alive socket) must not delay the exit code CI waits for. Output first.
await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
await new Promise<void>((resolve) => process.stderr.write("", () => resolve()));
process.exit();
