/**
 * One scenario that uses tick steps, checker identity and targets, pool versions and per-tick
 * counts, and mistakes in it that each assertion must catch: run on each engine by
 * test/runner/state-language.test.ts (model) and test/lua/scenarios.test.ts (APISIX's Lua).
 */
export const STATE_SCENARIO = `name: ticks, checker identity and targets, pool versions
backends:
  a: {hosts: [a.test]}
  b: {hosts: [b.test]}
steps:
  - admin: {method: PUT, path: /apisix/admin/routes/1, fixture: routes/two-backends.json}
  - request: {path: /ai/chat/completions, fixture: chat.json, status: 200}
  - tick: {before: 1ms}
  - assert:
      note: 1 ms before the first tick both checkers still wait
      pools: {waiting: [{route: 1, instance: 0, version: current}, {route: 1, instance: 1, version: current}], working: []}
  - tick: {after: 0}
  - assert:
      note: the tick built both
      pools: {waiting: [], working: [{route: 1, instance: 0, version: current}, {route: 1, instance: 1, version: current}]}
      checkers:
        - {route: 1, instance: 0, targets: ["a:80"]}
        - {route: 1, instance: 1, targets: ["b.test:80"]}
  - mark: built
  - admin: {method: PATCH, path: /apisix/admin/routes/1, fixture: routes/checks-changed.json}
  - mark: changed
  - tick: {after: 1ms, nth: 3}
  - mark: three-ticks
  - assert:
      when: {versions: [3.15.0, 3.16.0]}
      note: every tick after the PATCH crashes once; both checkers stay, at the old version
      log: {contains: "failed to run timer_working_pool_check", since: changed, until: three-ticks, perTick: 1}
      checkers: [{route: 1, instance: 0, keptSince: built}, {route: 1, instance: 1, keptSince: built}]
      pools: {working: [{route: 1, instance: 0, version: stale}, {route: 1, instance: 1, version: stale}]}
  - assert:
      when: {versions: [3.18.0]}
      note: the instance whose checks changed gets a new checker, the other keeps its own
      checkers: [{route: 1, instance: 0, rebuiltSince: built}, {route: 1, instance: 1, keptSince: built}]
      pools: {working: [{route: 1, instance: 0, version: current}, {route: 1, instance: 1, version: current}]}
expect: {default: passes}
`;

/** A wrong claim in STATE_SCENARIO, the version it is judged on, and what the run must say. */
export interface Mistake {
  name: string;
  from: string;
  to: string;
  version: string;
  message: RegExp;
}

export const MISTAKES: Mistake[] = [
  { name: "the tick has run at 1 ms before it", from: "tick: {after: 0}", to: "tick: {before: 1ms}", version: "3.18.0", message: /line 13: route 1 instance 0: has no working checker, expected one; route 1 instance 1: has no working checker, expected one/ },
  { name: "a kept checker is not rebuilt", from: "{route: 1, instance: 1, keptSince: built}]\n      pools: {working: [{route: 1, instance: 0, version: current}", to: "{route: 1, instance: 1, rebuiltSince: built}]\n      pools: {working: [{route: 1, instance: 0, version: current}", version: "3.18.0", message: /route 1 instance 1: checker checker\S+ is still the one at mark built: it was kept/ },
  { name: "a rebuilt checker is not kept", from: "{route: 1, instance: 0, rebuiltSince: built}", to: "{route: 1, instance: 0, keptSince: built}", version: "3.18.0", message: /route 1 instance 0: checker checker\S+ is not the one at mark built \(checker\S+\): it was rebuilt/ },
  { name: "a checker probes no other target", from: 'targets: ["a:80"]', to: 'targets: ["a:80", "b:80"]', version: "3.17.0", message: /route 1 instance 0: probes \[127\.0\.0\.\d+:80\]: lacks b:80, expected exactly \[a:80, b:80\]/ },
  { name: "a stale version is not current", from: "{route: 1, instance: 1, version: stale}", to: "{route: 1, instance: 1, version: current}", version: "3.16.0", message: /working pool: route 1 instance 1 at version \d+, not the current one \(the route's modifiedIndex is \d+\)/ },
  { name: "one crash per tick is not two", from: "perTick: 1", to: "perTick: 2", version: "3.15.0", message: /3 of 3 tick\(s\) had another count than 2: tick at 2000 ms had 1, tick at 3000 ms had 1, tick at 4000 ms had 1/ },
];

export function withMistake(m: Mistake): string {
  if (!STATE_SCENARIO.includes(m.from)) throw new Error(`mistake "${m.name}": the scenario has no "${m.from}"`);
  return STATE_SCENARIO.replace(m.from, m.to);
}
