import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wageCheck } from '../gateway/src/checks/wages/wageCheck.ts';
import { evidenceMonthClose } from '../gateway/src/checks/evidence-month-close/monthClose.ts';
import { createLogger } from '../gateway/src/observability/logger.ts';
import { testCard } from './support/cards.ts';
import { startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import { TestClock } from './support/clock.ts';
import { startInfluxd, type Influxd } from './support/influxd.ts';

/** The wall clock these tests run at: well after September's data and its wages' due date, so only the site's watermark decides. */
const clock = new TestClock('2026-11-10T12:00:00+08:00');

const SITE = 'S-PII';
/** Known card numbers with distinctive digits (Luhn-valid where the row must pass validation). */
const CARD = {
  w1: testCard(738_204_551, '622848'), w2: testCard(519_663_027, '622848'), w3: testCard(402_911_378, '622848'),
  paid: testCard(884_120_946, '622848'), csv: testCard(276_004_813, '622848'), unknownWorker: testCard(610_775_342, '622848'),
  noOffset: testCard(953_318_260, '622848'), broken: testCard(147_562_093, '622848'), badJson: testCard(365_880_714, '622848'),
};
const NOT_LUHN = (() => { const c = testCard(290_447_185, '622848'); return c.slice(0, -1) + String((Number(c.at(-1)) + 1) % 10); })();
const ALL = [...Object.values(CARD), NOT_LUHN];
/** What must never appear: the full number, and the part of it that is not the last 4 digits. */
const needles = ALL.flatMap((c) => [c, c.slice(0, -4)]);

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

function leaks(where: string, haystack: Buffer | string): string[] {
  const b = Buffer.isBuffer(haystack) ? haystack : Buffer.from(haystack);
  return needles.filter((n) => b.includes(n)).map((n) => `${where} holds ${n}`);
}

/**
 * PIPL: card numbers become a keyed hash + last 4 on receipt, and appear nowhere else. Known
 * numbers go in by every route that takes one (worker registry, JSON and CSV payments, accepted
 * and rejected rows, a CSV that breaks the parser, a JSON body that does not parse); then the data
 * directory (every file, SQLite WAL included), the logs (pino at trace), InfluxDB (every series
 * and value) and every export (evidence JSON and CSV, wage check, alerts, workers) are searched.
 */
describe('no card number in clear anywhere', () => {
  let g: TestGateway;
  let influx: Influxd;
  const logs: string[] = [];
  const exports: [string, string][] = [];
  const dataDir = tempDir('sitegate-pii-');

  beforeAll(async () => {
    influx = await startInfluxd();
    const logger = createLogger('trace', { write: (s: string) => void logs.push(s) });
    g = await startGateway({ SITEGATE_INFLUX_URL: influx.url, SITEGATE_INFLUX_DB: influx.db, SITEGATE_INFLUX_FLUSH_MS: '50', SITEGATE_LOG_LEVEL: 'trace' },
      { logger, checks: [wageCheck, evidenceMonthClose], now: clock.now }, dataDir);
    await g.device(SITE, 'T1', 'face_terminal', '330106');
    await g.device(SITE, 'ENV1', 'sensor', '330106');
    const answers: [string, { status: number; text: string }][] = [];
    const api = async (what: string, ...a: Parameters<TestGateway['api']>) => { const r = await g.api(...a); answers.push([what, r]); return r; };
    expect((await api('PUT W1', 'PUT', `/sites/${SITE}/workers/W1`, { name: 'W1', wageCard: CARD.w1 })).status).toBe(201);
    expect((await api('PUT W2', 'PUT', `/sites/${SITE}/workers/W2`, { name: 'W2', wageCard: CARD.w2 })).status).toBe(201);
    expect((await api('PUT W3', 'PUT', `/sites/${SITE}/workers/W3`, { name: 'W3', wageCard: CARD.w1 })).status).toBe(201); // shares W1's card
    expect((await api('PUT W4 bad card', 'PUT', `/sites/${SITE}/workers/W4`, { name: 'W4', wageCard: `${CARD.w3}x` })).status).toBe(400);
    const ts = (d: number, h: number) => `2026-09-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:00:00+08:00`;
    await api('checkins', 'POST', `/sites/${SITE}/devices/T1/checkins`, ['W1', 'W2', 'W3'].flatMap((w) => [1, 2, 3].flatMap((d) => [
      { id: `${w}-${d}-in`, workerId: w, ts: ts(d, 8), direction: 'in', method: 'card' }, { id: `${w}-${d}-out`, workerId: w, ts: ts(d, 17), direction: 'out', method: 'card' },
    ])));
    const paidAt = '2026-10-10T10:00:00+08:00';
    const json = await api('JSON payments', 'POST', `/sites/${SITE}/wage-payments`, [
      { id: 'J-1', workerId: 'W1', period: '2026-09', amount: 3000, paidAt, card: CARD.w1, status: 'paid' },
      { id: 'J-2', workerId: 'W2', period: '2026-09', amount: 3000, paidAt, card: CARD.paid, status: 'paid' }, // not W2's card
      { id: 'J-3', workerId: 'W9', period: '2026-09', amount: 1, paidAt, card: CARD.unknownWorker, status: 'paid' },
      { id: 'J-4', workerId: 'W1', period: '2026-09', amount: 1, paidAt, card: NOT_LUHN, status: 'paid' },
      { id: 'J-5', workerId: 'W1', period: '2026-09', amount: 1, paidAt: '2026-10-10T10:00:00', card: CARD.noOffset, status: 'paid' },
    ]);
    expect(json.json).toMatchObject({ accepted: 2, rejected: 3 });
    const csv = await api('CSV payments', 'POST', `/sites/${SITE}/wage-payments`,
      `\uFEFFid,workerId,period,amount,paidAt,card,status\r\nC-1,W3,2026-09,3000,${paidAt},${CARD.csv},paid\r\nC-2,W3,2026-09,1,${paidAt},${CARD.broken}"x,paid\r\n`, { contentType: 'text/csv' });
    expect(csv.json).toMatchObject({ accepted: 1, rejected: 1 });
    expect(csv.json.results[0].reason).toBe('csv_invalid');
    expect(csv.json.results[0].message).toContain(CARD.broken.slice(-4));
    const nd = await api('CSV payments, NDJSON answer', 'POST', `/sites/${SITE}/wage-payments`,
      `id,workerId,period,amount,paidAt,card,status\r\nC-1,W3,2026-09,3000,${paidAt},${CARD.csv},paid\r\nC-3,W9,2026-09,1,${paidAt},${CARD.unknownWorker},paid\r\n`, { contentType: 'text/csv' });
    expect(nd.status).toBe(200);
    expect((await api('malformed JSON', 'POST', `/sites/${SITE}/wage-payments`, `[{"id":"X","card":"${CARD.badJson}",`, {})).status).toBe(400);
    // Move the site past the due date so wage alerts are raised and the month is closed (audit trail).
    await api('reading', 'POST', `/sites/${SITE}/devices/ENV1/readings`, { id: 'nov', ts: '2026-11-01T00:30:00+08:00', metrics: { temperature_c: 3 } });
    await g.gw.checks.tick(clock.now());
    for (const [what, r] of answers) exports.push([`answer to ${what}`, r.text]);
    const get = async (p: string) => { const r = await g.api('GET', p); expect(r.status, `${p}: ${r.text}`).toBe(200); exports.push([p, r.text]); return r; };
    const wc = await get(`/sites/${SITE}/wage-check?month=2026-09`);
    expect(wc.json.findings.map((f: any) => `${f.kind} ${f.workerId}`).sort()).toEqual(['wage.card_mismatch W2', 'wage.card_mismatch W3', 'wage.shared_card W3']);
    const alerts = await get(`/alerts?siteId=${SITE}&includeWithdrawn=true`);
    expect(alerts.json.items.length).toBeGreaterThan(0);
    for (const w of ['W1', 'W2', 'W3']) {
      await get(`/sites/${SITE}/workers/${w}/evidence?month=2026-09`);
      await get(`/sites/${SITE}/workers/${w}/evidence?month=2026-09&format=csv`);
    }
    await get(`/sites/${SITE}/workers`);
    await get('/audit/verify');
    // InfluxDB has caught up with the ledger.
    for (let i = 0; ; i++) {
      const ready = await g.api('GET', '/readyz');
      if (ready.json.sinks[0].lagRecords === 0) break;
      if (i > 600) throw new Error(`sink lag stays ${ready.json.sinks[0].lagRecords}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 120_000);
  afterAll(async () => {
    await g?.stop().catch(() => {});
    await influx?.dispose();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('the data directory, every file including SQLite WAL files, while running and after shutdown', async () => {
    const running = filesUnder(dataDir);
    expect(running.some((f) => f.endsWith('-wal'))).toBe(true);
    expect(running.flatMap((f) => leaks(path.relative(dataDir, f), fs.readFileSync(f)))).toEqual([]);
    await g.stop({ keepDataDir: true });
    expect(filesUnder(dataDir).flatMap((f) => leaks(path.relative(dataDir, f), fs.readFileSync(f)))).toEqual([]);
    // …while what is kept is there: the last 4 digits.
    expect(filesUnder(dataDir).some((f) => fs.readFileSync(f).includes(CARD.paid.slice(-4)))).toBe(true);
  });

  it('the logs (pino at trace level)', () => {
    expect(logs.length).toBeGreaterThan(20);
    expect(leaks('logs', logs.join(''))).toEqual([]);
  });

  it('InfluxDB: every series, tag and value', async () => {
    const everything = JSON.stringify([
      await influx.query('SHOW MEASUREMENTS'), await influx.query('SHOW SERIES'), await influx.query('SHOW TAG KEYS'),
      await influx.query('SHOW FIELD KEYS'), await influx.query('SELECT * FROM /.*/'),
    ]);
    expect(everything).toContain('wage_payment');
    expect(everything).toContain(CARD.paid.slice(-4));
    expect(leaks('InfluxDB', everything)).toEqual([]);
  });

  it('every export and every answer: evidence JSON and CSV, wage check, alerts, workers, ingest answers', () => {
    expect(exports.length).toBeGreaterThan(12);
    expect(exports.flatMap(([where, text]) => leaks(where, text))).toEqual([]);
  });
});
