import type { HashOrder, LuaRandom } from "../../healthcheck/lua-random.ts";

/** What the picker is built from: each usable instance's name, weight and priority. */
export interface PickerNode {
  name: string;
  weight: number;
  priority?: number;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * lua-resty-balancer's roundrobin (resty/roundrobin.lua, v0.05) over name -> weight: interleaved
 * weighted round robin, walking the nodes in the table's hash order and starting after a random
 * node (get_random_node_id), so which instance answers first depends on the picker build.
 */
export class RoundRobin {
  private readonly ids: string[];
  private readonly weights: number[];
  private readonly onlyKey: string | undefined;
  private readonly gcd: number;
  private readonly maxWeight: number;
  private cw: number;
  /** Index in `ids` of the last node returned; -1: before the first. */
  private last: number;

  constructor(nodes: ReadonlyMap<string, number>, order: HashOrder, random: LuaRandom) {
    const entries = order.entries(nodes);
    if (entries.length === 0) throw new Error("empty nodes");
    this.ids = entries.map(([id]) => id);
    this.weights = entries.map(([, w]) => w);
    let g = this.weights[0]!;
    let max = g;
    for (const w of this.weights.slice(1)) {
      g = gcd(g, w);
      max = w > max ? w : max;
    }
    this.onlyKey = entries.length === 1 ? this.ids[0] : undefined;
    this.gcd = g;
    this.maxWeight = max;
    this.cw = max;
    this.last = random.int(1, entries.length) - 1;
  }

  find(): string {
    if (this.onlyKey !== undefined) return this.onlyKey;
    let cw = this.cw;
    let i = this.last;
    for (;;) {
      for (i += 1; i < this.ids.length; i++) {
        if (this.weights[i]! >= cw) {
          this.cw = cw;
          this.last = i;
          return this.ids[i]!;
        }
      }
      i = -1;
      cw -= this.gcd;
      if (cw <= 0) cw = this.maxWeight;
    }
  }
}

/**
 * The server picker ai-proxy-multi builds (create_server_picker): one round robin over the
 * instances of a single priority, or apisix/balancer/priority.lua over several (a round robin per
 * priority, highest first; the highest always answers, as nothing is retried here).
 */
export class ServerPicker {
  private readonly pickers: RoundRobin[];

  constructor(nodes: readonly PickerNode[], order: HashOrder, random: LuaRandom) {
    const byPriority = new Map<number, Map<string, number>>();
    for (const n of nodes) {
      const p = n.priority ?? 0;
      let group = byPriority.get(p);
      if (!group) byPriority.set(p, (group = new Map()));
      group.set(n.name, n.weight);
    }
    const priorities = [...byPriority.keys()];
    if (priorities.length > 1) priorities.sort((a, b) => b - a);
    this.pickers = priorities.map((p) => new RoundRobin(byPriority.get(p)!, order, random));
  }

  pick(): string | undefined {
    return this.pickers[0]?.find();
  }
}
