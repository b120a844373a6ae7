import type { LedgerReads } from '../ledgerQueries.ts';
import type { RecordKind, StoredRecord } from '../types.ts';
import { READS } from './pgLedger.ts';
import { toStored, type Row } from '../ledgerQueries.ts';

/** A synchronous connection: the state's (`PgStateDb`, inside its transaction) or one of its own (`SyncPg`). */
export interface SyncQueryable {
  query(sql: string, params: unknown[]): { rows: Record<string, unknown>[] };
}

/**
 * The ledger reads a synchronous caller needs, over a synchronous connection, with the PostgreSQL
 * ledger's own statements (READS). A check's step reads through the state's connection: inside
 * its transaction, after the state lock, so what it decides from (a key person's day at every one
 * of their sites) is at least what the step committed before it saw — two shards deciding in turn
 * never decide from an older view than the one before (attendance/checkinDays.ts). The report
 * thread, which blocks nobody but itself, reads months over a connection of its own.
 */
export class PgSyncReads implements LedgerReads {
  constructor(private readonly pg: SyncQueryable) {}

  bySiteKind(siteId: string, kind: Exclude<RecordKind, 'reading'>, from = 0, to = Number.MAX_SAFE_INTEGER): StoredRecord[] {
    return this.rows(READS.bySiteKind, [siteId, kind, from, to]);
  }

  paymentsOf(siteId: string, period: string): StoredRecord[] {
    return this.rows(READS.payments, [siteId, period]);
  }

  byWorker(siteId: string, kind: 'checkin' | 'verdict', workerId: string, from: number, to: number): StoredRecord[] {
    return this.rows(kind === 'checkin' ? READS.checkinsByWorker : READS.verdictsByWorker, [siteId, workerId, from, to]);
  }

  private rows(text: string, values: unknown[]): StoredRecord[] {
    return (this.pg.query(text, values).rows as unknown as Row[]).map(toStored);
  }
}
