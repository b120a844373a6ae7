import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditTrail } from '../audit/auditTrail.ts';
import { CheckProgress } from '../checks/progress.ts';
import type { RaiseSignal } from '../checks/types.ts';
import { Ledger } from '../ledger/ledger.ts';
import { openStateDb } from '../state/stateDb.ts';
import { Transactions } from '../state/transactions.ts';
import { AlertLedgerFeed } from './alertLedger.ts';
import { AlertStore } from './alertStore.ts';

const T0 = Date.parse('2026-09-01T02:00:00Z');
const raise: RaiseSignal = {
  type: 'raise', kind: 'hazard.threshold', siteId: 'S1', subject: { deviceId: 'D1', metric: 'pm10' },
  key: 'hazard.threshold:D1:pm10:dust-mean', severity: 'warning', openedAt: T0, message: 'pm10', evidence: {},
};

describe('alert events into the ledger (real SQLite)', () => {
  let dir: string;
  let ledger: Ledger;
  let db: ReturnType<typeof openStateDb>;
  let alerts: AlertStore;
  let audit: AuditTrail;
  const feed = () => new AlertLedgerFeed({ alerts, audit, ledger, progress: new CheckProgress(db, 'alert-ledger'), logger: pino({ level: 'silent' }) });
  const alertRecords = () => ledger.readAfter(0, 1000, ['alert']).map((r) => `${r.body.event} ${r.body.state}`);

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alert-ledger-'));
    ledger = await Ledger.open(dir);
    db = openStateDb(':memory:');
    audit = new AuditTrail(db);
    alerts = new AlertStore({ db, audit, now: () => T0 + 60_000 });
  });
  afterEach(async () => {
    await ledger.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('records two events of one alert committed in one transaction as two records', async () => {
    const f = feed();
    await f.start();
    alerts.onEvent((e) => f.record(e));
    Transactions.of(db).run(() => {
      alerts.apply(raise);
      alerts.apply({ type: 'clear', kind: raise.kind, siteId: 'S1', key: raise.key, at: T0 + 1000 });
    });
    await ledger.drained();
    expect(alertRecords()).toEqual(['opened open', 'cleared cleared']);
  });

  it('a start appends the events a crash kept from the ledger, once, and none twice on the next start', async () => {
    await feed().start(); // first start of the data directory: the trail's head is the cursor
    // Committed in state.db, but the process dies before the ledger append (no listener here).
    Transactions.of(db).run(() => alerts.apply(raise));
    alerts.apply({ type: 'clear', kind: raise.kind, siteId: 'S1', key: raise.key, at: T0 + 1000 });
    expect(alertRecords()).toEqual([]);
    const again = feed();
    await again.start();
    expect(alertRecords()).toEqual(['opened open', 'cleared cleared']);
    await again.close();
    await feed().start();
    expect(alertRecords()).toHaveLength(2);
  });
});
