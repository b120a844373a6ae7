/**
 * Test harness for the key-staff check: a real ledger, registry, alert store and check runner in a
 * temporary directory, fed with the records of a case (cases/<name>/records.json) in arrival
 * order, with an optional restart part-way through.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { SiteBody, WorkerBody } from '../../../../schemas/src/api.ts';
import { AlertStore } from '../../alerts/alertStore.ts';
import { AuditTrail } from '../../audit/auditTrail.ts';
import { Ledger } from '../../ledger/ledger.ts';
import type { LedgerRecord } from '../../ledger/types.ts';
import { createMetrics } from '../../observability/metrics.ts';
import { Registry } from '../../registry/registry.ts';
import { LiveState } from '../../state/liveState.ts';
import type { CheckContext } from '../check.ts';
import { CheckRunner } from '../checkRunner.ts';
import { CheckProgress } from '../progress.ts';
import { KEY_STAFF, keyStaffCheck } from './keyStaffCheck.ts';

export interface CaseSite {
  sites: ({ siteId: string } & Partial<SiteBody>)[];
  workers: ({ siteId: string; workerId: string } & Partial<WorkerBody>)[];
}

/**
 * One line of records.json. Times are local wall-clock strings with an offset (`ts`), or `time`
 * with `day`, `days` or a `from`…`to` range (every day, `except` some) to write a month compactly.
 */
export interface CaseEvent {
  kind: 'checkin' | 'verdict' | 'reading';
  site: string;
  worker?: string;
  device?: string;
  id?: string;
  ts?: string;
  time?: string;
  day?: string;
  days?: string[];
  from?: string;
  to?: string;
  except?: string[];
  direction?: 'in' | 'out';
  method?: string;
  /** verdict: the check-in id it judges, and the verdict. */
  of?: string;
  verdict?: string;
}

const OFFSET = '+08:00';

function daysBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

/**
 * records.json: an array in arrival order, or `{inEventTimeOrder: true, records}` when the records
 * arrive in event-time order (compact month-long forms of several workers interleaved).
 */
export type CaseRecords = CaseEvent[] | { inEventTimeOrder: true; records: CaseEvent[] };

export function caseEvents(spec: CaseRecords): (CaseEvent & { at: number })[] {
  if (Array.isArray(spec)) return expandEvents(spec);
  return expandEvents(spec.records).map((e, i) => ({ e, i })).sort((a, b) => a.e.at - b.e.at || a.i - b.i).map(({ e }) => e);
}

/** Expands the compact forms into one event per timestamp, keeping arrival order. */
export function expandEvents(events: CaseEvent[]): (CaseEvent & { at: number })[] {
  const out: (CaseEvent & { at: number })[] = [];
  for (const e of events) {
    if (e.ts || !e.time) { out.push({ ...e, at: e.ts ? Date.parse(e.ts) : NaN }); continue; } // a verdict takes its check-in's time
    const days = e.day ? [e.day] : e.days ?? daysBetween(e.from!, e.to!);
    for (const d of days) if (!e.except?.includes(d)) out.push({ ...e, day: d, at: Date.parse(`${d}T${e.time}:00${OFFSET}`) });
  }
  return out;
}

let counter = 0;

export function toRecord(e: CaseEvent & { at: number }, checkins: Map<string, LedgerRecord>): LedgerRecord {
  const device = e.device ?? `FT-${e.site}`;
  const n = ++counter;
  if (e.kind === 'reading') {
    const id = `r-${n}`;
    return { siteId: e.site, deviceId: `ENV-${e.site}`, kind: 'reading', msgId: id, dedupeKey: `ENV-${e.site}/${id}`, ts: e.at, receivedAt: e.at, body: { metrics: { pm10: 10 } } };
  }
  if (e.kind === 'checkin') {
    const id = e.id ?? `c-${e.worker}-${e.at}-${n}`;
    const r: LedgerRecord = {
      siteId: e.site, deviceId: device, kind: 'checkin', msgId: id, dedupeKey: `${device}/${id}`, ts: e.at, receivedAt: e.at,
      body: { workerId: e.worker, direction: e.direction ?? 'in', method: e.method ?? 'card' },
    };
    checkins.set(id, r);
    return r;
  }
  const c = checkins.get(e.of!);
  if (!c) throw new Error(`verdict of unknown check-in ${e.of}`);
  return {
    siteId: c.siteId, deviceId: c.deviceId, kind: 'verdict', msgId: `verdict:${c.msgId}`, dedupeKey: `verdict:${c.dedupeKey}`, ts: c.ts, receivedAt: c.ts,
    body: { ...c.body, checkinId: c.msgId, checkinKey: c.dedupeKey, verdict: e.verdict },
  };
}

export interface Harness {
  ctx: CheckContext;
  ledger: Ledger;
  registry: Registry;
  alerts: AlertStore;
  runner: CheckRunner;
  /** Appends records one at a time, each seen by the check before the next arrives (arrival order). */
  feed(records: LedgerRecord[]): Promise<void>;
  /** Stops the runner (cleanly, or as after a crash that lost the check's ledger cursor) and starts a new one. */
  restart(opts?: { loseCursor?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/** The wall clock of the harness: far after any case, so no site is "live" and only event time decides. */
export const HARNESS_NOW = Date.parse('2030-01-01T00:00:00Z');

export async function harness(spec: CaseSite): Promise<Harness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keystaff-case-'));
  const now = () => HARNESS_NOW;
  const registry = new Registry(dir, { scryptN: 1024, now });
  for (const { siteId, ...s } of spec.sites) registry.putSite(siteId, { name: siteId, regionCode: '330106', ...s } as SiteBody);
  for (const { siteId, workerId, ...w } of spec.workers) registry.putWorker(siteId, workerId, { name: workerId, ...w } as WorkerBody);
  const ledger = await Ledger.open(dir);
  const audit = new AuditTrail(registry.db);
  const alerts = new AlertStore({ db: registry.db, audit, now });
  const live = await LiveState.load(ledger);
  const ctx: CheckContext = { registry, ledger, alerts, audit, live, logger: pino({ level: 'silent' }), metrics: createMetrics(), now, dataDir: dir };
  const h: Harness = {
    ctx, ledger, registry, alerts,
    runner: new CheckRunner(ctx, [keyStaffCheck], 3_600_000),
    async feed(records) {
      for (const r of records) {
        await ledger.append(r);
        await h.runner.idle();
      }
    },
    async restart(opts = {}) {
      await h.runner.stop();
      if (opts.loseCursor) new CheckProgress(registry.db, KEY_STAFF).set('cursor', 0);
      h.runner = new CheckRunner(ctx, [keyStaffCheck], 3_600_000);
      await h.runner.start(ledger);
      await h.runner.idle();
    },
    async close() {
      await h.runner.stop();
      await ledger.close();
      registry.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await h.runner.start(ledger);
  return h;
}

/** Every alert in the store (withdrawn ones included), in a stable, comparable form. */
export function alertSummary(alerts: AlertStore): { kind: string; siteId: string; workerId?: string; openedAt: string; state: string; withdrawn?: true }[] {
  return alerts.list({ limit: 10_000, includeWithdrawn: true }).items
    .map((a) => ({
      kind: a.kind, siteId: a.siteId, ...(a.subject.workerId ? { workerId: a.subject.workerId } : {}),
      openedAt: new Date(a.openedAt + 8 * 3_600_000).toISOString().replace('Z', OFFSET).replace('.000', ''),
      state: a.state, ...(a.withdrawn ? { withdrawn: true as const } : {}),
    }))
    .sort((a, b) => (a.kind + a.siteId + (a.workerId ?? '') + a.openedAt).localeCompare(b.kind + b.siteId + (b.workerId ?? '') + b.openedAt));
}
