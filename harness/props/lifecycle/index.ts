/**
 * Model-based test of health-checker lifecycles (fast-check commands + asyncModelRun):
 * checkLifecycle runs it for a version profile, counterexampleToScenario turns a shrunk
 * counterexample into a scenario file. See run.ts (options), commands.ts (the commands),
 * invariants.ts (what must hold), world.ts (routes, backends, instances).
 */
export { checkLifecycle, lifecycleProperty, replay, type LifecycleOptions, type LifecycleTrace, type LifecycleVerdict } from "./run.ts";
export { counterexampleToScenario, crashPattern, CRASH_PATTERN, type ScenarioOptions } from "./to-scenario.ts";
export { checkInvariants, coverage, resetCoverage, routeSettled, SETTLE_MS, type InvariantCoverage } from "./invariants.ts";
export { describeStep, describeViolation, type RecordedStep, type Violation } from "./model.ts";
export { LIFECYCLE_BACKENDS, LIFECYCLE_HOSTS, ROUTE_IDS, worldSource } from "./world.ts";
