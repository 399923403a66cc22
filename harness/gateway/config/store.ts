/**
 * The key-value store the gateway's config lives in. Real etcd implements it (harness/etcd/),
 * and so does the in-memory store (memory-store.ts). Only the parts of etcd the gateway can
 * observe are in this interface: revisions, ordered watch events, prefix ranges.
 */

export interface KeyValue {
  key: string;
  value: string;
  /** etcd create_revision: the revision at which the key was created. */
  createRevision: number;
  /** etcd mod_revision: the revision of the last change to the key (APISIX's modifiedIndex). */
  modRevision: number;
}

export type WatchEvent =
  | { type: "put"; kv: KeyValue }
  | { type: "delete"; key: string; modRevision: number };

export interface WatchBatch {
  events: WatchEvent[];
  /** The store's revision after these events. */
  revision: number;
}

/**
 * The store failed a call: it does not answer, was closed, or refused the request. Its message
 * names the store. The Admin API answers 503 for these (and 500 for anything else).
 */
export class StoreError extends Error {}

export interface Watch {
  cancel(): Promise<void>;
}

export interface WatchHandlers {
  onBatch(batch: WatchBatch): void;
  /**
   * The watch broke (store restarted, connection lost, revision compacted). The consumer watches
   * again from the next revision, as APISIX's config_etcd does; `compacted` means that revision
   * is gone, and the consumer must read everything again.
   */
  onBroken(reason: string): void;
}

/** Every call may reject with StoreError. */
export interface Store {
  /** "etcd" or "memory". */
  readonly kind: "etcd" | "memory";
  /** One line saying what this store is, for the "which store is used and why" line. */
  readonly description: string;
  get(key: string): Promise<KeyValue | undefined>;
  /** Every key under the prefix, and the store revision the read was made at. */
  range(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }>;
  /** Write a key; resolves with the new revision (= the key's modRevision). */
  put(key: string, value: string): Promise<number>;
  /** Delete a key; resolves with the new revision, or undefined when the key did not exist. */
  delete(key: string): Promise<number | undefined>;
  /** Watch every change under the prefix with a revision >= fromRevision, in revision order. */
  watch(prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch>;
  /** Drop history older than the revision; watches from before it break. */
  compact(revision: number): Promise<void>;
  /** The current revision. */
  revision(): Promise<number>;
  /** Whether a watch from this revision would be refused as compacted (its history is gone). */
  isCompacted(revision: number): Promise<boolean>;
  /**
   * Simulate an etcd restart as the gateway sees it: every open watch breaks and must resync.
   * Data is kept.
   */
  restart(): Promise<void>;
  /** Release connections and stop whatever this store started. Idempotent. */
  close(): Promise<void>;
}
