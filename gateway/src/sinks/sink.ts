import type { StoredRecord } from '../ledger/types.ts';

/**
 * A sink receives committed ledger records and says plainly what happened to them: written,
 * refused as bad data (4xx: the runner splits the batch to find the bad records, which go to dead
 * letters), or failed for now (5xx, network: retried with back-off). What a record becomes is
 * the sink's business (time-series sinks: contract §4 points, sinks/points.ts, in their own wire
 * format). Each implementation passes the same contract suite (sinks/sinkContract.ts).
 */
export interface Sink {
  readonly name: string;
  /** Stores the records (those it has nothing to store for are skipped); resolves when the database confirmed them, or throws a SinkError. */
  write(records: StoredRecord[]): Promise<void>;
  /** A record as this sink sends it, kept with a dead letter so an operator sees what was refused. */
  render(record: StoredRecord): string;
  /** Whether the database answers (for /readyz). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export class SinkError extends Error {
  /** `bad_data`: the database refused the points themselves; `retryable`: try the same again later. */
  readonly kind: 'bad_data' | 'retryable';
  readonly status?: number;

  constructor(kind: 'bad_data' | 'retryable', message: string, status?: number) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** HTTP status → class: 4xx other than auth/rate limits is bad data; the rest is worth retrying. */
export function classifyStatus(status: number): 'bad_data' | 'retryable' {
  if (status >= 400 && status < 500 && status !== 401 && status !== 403 && status !== 404 && status !== 408 && status !== 429) return 'bad_data';
  return 'retryable';
}
