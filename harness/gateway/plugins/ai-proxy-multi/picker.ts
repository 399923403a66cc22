import type { Instance } from "./types.ts";

/**
 * The health part of the server picker's cache key (pick_target): the cached picker is reused
 * while the key stays the same, so what the key leaves out is health the picker never sees.
 */
export type PickerHealthKey = (instances: readonly Instance[], checkers: ReadonlyMap<string, { status_ver: number } | undefined>) => string;

/**
 * 3.15.0-3.17.0: the sum of the checkers' status_ver, once any instance has checks
 * (ai-proxy-multi.lua:223-228 and :353-357@3.15.0). A checker created after the picker, finding
 * its targets' health already in the shared dict, adds 0: the unfiltered picker stays.
 */
export const statusVerSum: PickerHealthKey = (_instances, checkers) =>
  checkers.size === 0 ? "" : `#${[...checkers.values()].reduce((s, c) => s + (c?.status_ver ?? 0), 0)}`;

/** 3.18.0: one part per instance, "x" while it has no checker (ai-proxy-multi.lua:421-433@3.18.0). */
export const statusVerPerInstance: PickerHealthKey = (instances, checkers) => `#${instances.map((i) => checkers.get(i.name)?.status_ver ?? "x").join("-")}`;

/**
 * Smooth weighted round robin over the instances of the highest priority present (nginx's
 * algorithm; deterministic). Weight-0 instances are never picked.
 */
export class ServerPicker {
  private readonly current = new Map<string, number>();
  private readonly group: Instance[];

  constructor(instances: Instance[]) {
    const top = Math.max(...instances.map((i) => i.priority ?? 0));
    this.group = instances.filter((i) => (i.priority ?? 0) === top && i.weight > 0);
  }

  pick(): Instance | undefined {
    if (this.group.length === 0) return undefined;
    const total = this.group.reduce((s, i) => s + i.weight, 0);
    let best: Instance | undefined;
    let bestScore = -Infinity;
    for (const ins of this.group) {
      const score = (this.current.get(ins.name) ?? 0) + ins.weight;
      this.current.set(ins.name, score);
      if (score > bestScore) {
        best = ins;
        bestScore = score;
      }
    }
    this.current.set(best!.name, bestScore - total);
    return best;
  }
}
