import { Command, CommanderError } from "commander";
import { registerDiff } from "./diff.ts";
import { registerImport } from "./import.ts";
import { registerProps } from "./props.ts";
import { registerRepro } from "./repro.ts";
import { registerRun } from "./run.ts";
import { registerServe } from "./serve.ts";
import { EXIT, UsageError } from "./usage.ts";

const program = new Command();
program
  .name("harness")
  .description("Simulation and regression harness for Apache APISIX ai-proxy-multi health checks (apache/apisix#13101)")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

registerRepro(program);
registerRun(program);
registerServe(program);
registerProps(program);
registerImport(program);
registerDiff(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // --help and --version exit 0; every other parse failure is bad usage.
    process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else if (e instanceof UsageError) {
    process.stderr.write(`harness: ${e.message}\n`);
    process.exitCode = EXIT.usage;
  } else {
    process.stderr.write(`harness: ${(e as Error).message}\n`);
    process.exitCode = EXIT.failed;
  }
}
