import type { Clock } from "../clock/clock.ts";

/** What lua-resty-healthcheck posts with an event: the target. */
export interface TargetEvent {
  ip: string;
  port: number;
  hostname?: string;
}

export type EventHandler = (event: string, data: TargetEvent) => void;

/** One worker's resty.events handlers, by event source. */
export class WorkerEvents {
  private readonly handlers = new Map<string, EventHandler[]>();

  constructor(
    readonly bus: EventBus,
    readonly worker: number,
  ) {}

  /** register_weak (lua-resty-healthcheck registers each checker's callback for its own source). */
  register(source: string, handler: EventHandler): void {
    const list = this.handlers.get(source);
    if (list) list.push(handler);
    else this.handlers.set(source, [handler]);
  }

  unregister(source: string, handler: EventHandler): void {
    const list = this.handlers.get(source);
    if (!list) return;
    const i = list.indexOf(handler);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.handlers.delete(source);
  }

  post(source: string, event: string, data: TargetEvent): void {
    this.bus.post(source, event, data);
  }

  /** The handlers registered when the event arrives get it. */
  deliver(source: string, event: string, data: TargetEvent): void {
    const list = this.handlers.get(source);
    if (!list) return;
    for (const h of [...list]) h(event, data);
  }
}

/**
 * resty.events as lua-resty-healthcheck uses it (`post`, through its compat API): an event
 * reaches every worker, each in a 0-delay timer of its own. So a checker's local view of a
 * target changes one timer after the shm did, in every worker alike.
 */
export class EventBus {
  readonly workers: WorkerEvents[] = [];

  constructor(
    private readonly clock: Clock,
    workers: number,
    /** Told of every delivery (the run's timeline shows health changes as they arrive). */
    private readonly onDeliver?: (worker: number, source: string, event: string, data: TargetEvent) => void,
  ) {
    for (let i = 0; i < workers; i++) this.workers.push(new WorkerEvents(this, i));
  }

  post(source: string, event: string, data: TargetEvent): void {
    for (const w of this.workers) {
      this.clock.after(0, () => {
        this.onDeliver?.(w.worker, source, event, data);
        w.deliver(source, event, data);
      });
    }
  }
}
