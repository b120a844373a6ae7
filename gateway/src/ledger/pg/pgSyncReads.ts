import type { SyncPg } from '../../state/pg/syncPg.ts';
import type { LedgerReads } from '../ledger.ts';
import type { RecordKind, StoredRecord } from '../types.ts';
import { READS, toStored, type Row } from './pgLedger.ts';

/**
 * The ledger reads a synchronous caller needs, over a synchronous connection (state/pg/syncPg.ts),
 * with the PostgreSQL ledger's own statements (READS): keystaff's day cache reads one local day
 * of check-ins inside its step's transaction (attendance/checkinDays.ts), and the report thread,
 * which blocks nobody but itself, reads months with it.
 */
export class PgSyncReads implements LedgerReads {
  constructor(private readonly pg: SyncPg) {}

  bySiteKind(siteId: string, kind: Exclude<RecordKind, 'reading'>, from = 0, to = Number.MAX_SAFE_INTEGER): StoredRecord[] {
    return this.rows(READS.bySiteKind, [siteId, kind, from, to]);
  }

  paymentsOf(siteId: string, period: string): StoredRecord[] {
    return this.rows(READS.payments, [siteId, period]);
  }

  byWorker(siteId: string, kind: 'checkin' | 'verdict', workerId: string, from: number, to: number): StoredRecord[] {
    return this.rows(kind === 'checkin' ? READS.checkinsByWorker : READS.verdictsByWorker, [siteId, workerId, from, to]);
  }

  close(): void {
    this.pg.close();
  }

  private rows(text: string, values: unknown[]): StoredRecord[] {
    return this.pg.query<Row>(text, values).rows.map(toStored);
  }
}
