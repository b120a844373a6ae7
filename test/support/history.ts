import { Ledger } from '../../gateway/src/ledger/ledger.ts';
import type { LedgerRecord } from '../../gateway/src/ledger/types.ts';
import { Registry } from '../../gateway/src/registry/registry.ts';

/**
 * A site with history, written straight into a data directory before a gateway starts on it (as
 * if the gateway had lived through it): registry rows, and a ledger holding every working day's
 * check-ins (in ~08:00, out ~18:00 site time) with the face verdicts they got, plus check-ins of
 * unregistered workers. Starting a gateway on it replays the checks over that history, which
 * raises its alerts (key staff absent, unknown workers). Deterministic: no randomness, no wall clock.
 */
export interface HistoryOptions {
  dataDir: string;
  siteId: string;
  /** Local days `YYYY-MM-DD` with check-ins (site time Asia/Shanghai, +08:00). */
  days: string[];
  workers: number;
  keyStaff: number;
  /** Face terminal device id of the site (registered, secret returned). */
  terminalId: string;
  /** Wall clock at which the registry rows are written. */
  now: number;
}

export const historyWorkerId = (i: number) => `W${String(i).padStart(4, '0')}`;
export const historyKeyStaffId = (i: number) => `K${String(i).padStart(2, '0')}`;

export async function seedHistory(o: HistoryOptions): Promise<{ terminalSecret: string; checkins: number }> {
  const registry = new Registry(o.dataDir, { scryptN: 1024, now: () => o.now });
  registry.putSite(o.siteId, { name: o.siteId, regionCode: '330106' });
  const roles = ['project_manager', 'technical_lead', 'safety_officer', 'quality_officer', 'chief_supervisor', 'supervisor'] as const;
  for (let k = 0; k < o.keyStaff; k++) registry.putWorker(o.siteId, historyKeyStaffId(k), { name: `Key ${k}`, employer: 'GC', trade: 'management', keyRole: roles[k % roles.length]! });
  for (let i = 0; i < o.workers; i++) registry.putWorker(o.siteId, historyWorkerId(i), { name: `Worker ${i}`, employer: 'Sub', trade: 'rebar' });
  const { secret } = await registry.putDevice(o.siteId, o.terminalId, { kind: 'face_terminal' }, 1024);
  registry.close();

  const ledger = await Ledger.open(o.dataDir);
  let checkins = 0;
  for (const day of o.days) {
    const records: LedgerRecord[] = [];
    const add = (workerId: string, n: number, direction: 'in' | 'out', hhmm: string, withVerdict: boolean) => {
      const id = `${day}-${workerId}-${direction}`;
      const ts = Date.parse(`${day}T${hhmm}:00+08:00`) + (n % 600) * 1000;
      const dedupeKey = `${o.terminalId}/${id}`;
      records.push({
        siteId: o.siteId, deviceId: o.terminalId, kind: 'checkin', msgId: id, dedupeKey, ts, receivedAt: ts + 2000,
        body: { workerId, direction, method: 'face', terminalScore: 0.9 },
      });
      checkins++;
      if (!withVerdict) return;
      records.push({
        siteId: o.siteId, deviceId: o.terminalId, kind: 'verdict', msgId: `verdict:${id}`, dedupeKey: `verdict:${dedupeKey}`, ts, receivedAt: ts + 3000,
        body: { deviceId: o.terminalId, workerId, direction, method: 'face', checkinId: id, checkinKey: dedupeKey, verdict: 'unverified', threshold: 0.4, minFacePx: 48, reason: 'not_enrolled', modelId: 'test' },
      });
    };
    const weekday = new Date(`${day}T00:00:00Z`).getUTCDay();
    // Key staff: each misses a different weekday (keystaff.absent alerts in the history).
    for (let k = 0; k < o.keyStaff; k++) {
      if (weekday === (k % 6) + 1) continue;
      add(historyKeyStaffId(k), k, 'in', '08:00', true);
      add(historyKeyStaffId(k), k, 'out', '18:00', true);
    }
    for (let i = 0; i < o.workers; i++) {
      add(historyWorkerId(i), i, 'in', '07:30', true);
      add(historyWorkerId(i), i, 'out', '17:30', true);
    }
    // A visitor not in the registry every day (checkin.unknown_worker).
    add(`V-${day}`, 0, 'in', '09:00', true);
    await ledger.appendMany(records);
  }
  await ledger.close();
  return { terminalSecret: secret!, checkins };
}

/** Local days of a month `YYYY-MM` from `first` to `last` (inclusive). */
export function daysOf(month: string, first: number, last: number): string[] {
  const out: string[] = [];
  for (let d = first; d <= last; d++) out.push(`${month}-${String(d).padStart(2, '0')}`);
  return out;
}
