import type { Instance } from "./types.ts";

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
