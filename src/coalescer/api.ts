/** What the receiver tells the pipeline about a newly journaled, pending delivery. Only ids: the journal holds payloads. */
export interface Notice {
  deliveryId: string;
  subject: string;
}

/** A flushed micro-batch: the subjects whose window closed (or whose batch hit `BATCH_MAX`). */
export interface Batch {
  id: string;
  subjects: string[];
  /** Deliveries that went into it, for logs (`batched`) and the batch-size metric. */
  deliveryIds: string[];
}

/**
 * Groups notices by subject. A subject's window opens at its first notice and closes
 * `windowMs` later; all subjects are flushed at once when `maxEvents` notices wait.
 * `windowMs` 0 means no coalescing: each notice is flushed on the next tick.
 */
export interface CoalescerApi {
  add(notice: Notice): void;
  /** Flushes everything waiting now (shutdown). */
  flush(): void;
  /** Notices waiting. */
  readonly size: number;
  stop(): void;
}
