import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestCsvFile } from '../gateway/src/cli/verifyDigest.ts';
import { wageCheck } from '../gateway/src/checks/wages/wageCheck.ts';
import { DIGEST_GENESIS } from '../gateway/src/evidence/digest.ts';
import { digestSubject, evidenceMonthClose } from '../gateway/src/checks/evidence-month-close/monthClose.ts';
import { startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import { TestClock } from './support/clock.ts';
import { FACES_DIR } from './support/scenario.ts';

/** The wall clock these tests run at: well after September's data and its wages' due date, so only the site's watermark decides. */
const clock = new TestClock('2026-11-10T12:00:00+08:00');

const SITE = 'S-EV';
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const photoA = fs.readFileSync(path.join(FACES_DIR, 'cady_coleman_1.jpg'));
const photoB = fs.readFileSync(path.join(FACES_DIR, 'carl_walz_1.jpg'));
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const ODD_ID = 'T1-"odd", id';

/** `npm run digest -- …` exactly as the README shows it (node --import tsx gateway/src/cli/verifyDigest.ts). */
function digestCommand(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'gateway/src/cli/verifyDigest.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('attendance evidence for auditors', () => {
  let g: TestGateway;
  const tokens: Record<string, string> = {};
  const files = tempDir('sitegate-evidence-');
  const evidence = (worker = 'W1', q = '', token?: string) => g.api('GET', `/sites/${SITE}/workers/${worker}/evidence?month=2026-09${q}`, undefined, token ? { token } : {});

  beforeAll(async () => {
    g = await startGateway({}, { checks: [wageCheck, evidenceMonthClose], now: clock.now });
    await g.device(SITE, 'T1', 'face_terminal', '330106');
    await g.device(SITE, 'ENV1', 'sensor', '330106');
    await g.device('S-EV2', 'T2', 'face_terminal', '511302');
    for (const w of ['W1', 'W2']) await g.api('PUT', `/sites/${SITE}/workers/${w}`, { name: w });
    await g.api('PUT', '/sites/S-EV2/workers/W9', { name: 'W9' });
    for (const [name, body] of Object.entries({
      auditor: { role: 'auditor', scope: { sites: [SITE] } }, auditorOut: { role: 'auditor', scope: { sites: ['S-EV2'] } },
      regulator: { role: 'regulator', scope: { regions: ['3301'] } }, regulatorOut: { role: 'regulator', scope: { regions: ['5113'] } },
      payroll: { role: 'payroll', scope: { sites: [SITE] } },
    })) tokens[name] = (await g.api('POST', '/tokens', body)).json.token;
    const c = (id: string, ts: string, direction: string, extra: Record<string, unknown> = {}) => ({ id, workerId: 'W1', ts, direction, method: 'card', ...extra });
    const r = await g.api('POST', `/sites/${SITE}/devices/T1/checkins`, [
      // Sent out of order: the export is in event-time order whatever the arrival order.
      c('d2-out', '2026-09-02T17:30:00+08:00', 'out'), c('d2-in', '2026-09-02T08:00:00+08:00', 'in'),
      c('d1-in', '2026-09-01T07:58:12+08:00', 'in', { method: 'face', terminalScore: 0.91, photo: photoA.toString('base64') }),
      c('d1-out', '2026-09-01T12:00:00+08:00', 'out'), c('d1-in2', '2026-09-01T13:00:00+08:00', 'in'), c('d1-out2', '2026-09-01T18:00:00+08:00', 'out'),
      c(ODD_ID, '2026-09-03T08:00:00+08:00', 'in'), // an in with no out: present, no hours
      c('d5-in', '2026-09-05T08:00:00+08:00', 'in', { method: 'face', photo: photoB.toString('base64') }),
    ]);
    expect(r.json.accepted, r.text).toBe(8);
    // A face verdict as the face-verification check writes it: day 5's photo was someone else.
    await g.gw.ledger.append({
      siteId: SITE, deviceId: 'T1', kind: 'verdict', msgId: 'verdict:d5-in', dedupeKey: 'verdict:T1/d5-in', ts: Date.parse('2026-09-05T00:00:00Z'), receivedAt: clock.now(),
      body: { deviceId: 'T1', workerId: 'W1', direction: 'in', method: 'face', checkinId: 'd5-in', checkinKey: 'T1/d5-in', verdict: 'face_mismatch', similarity: 0.1234567, photoSha256: sha(photoB) },
    });
    await g.api('POST', '/sites/S-EV2/devices/T2/checkins', { id: 'x', workerId: 'W9', ts: '2026-09-01T08:00:00+08:00', direction: 'in', method: 'face', photo: photoB.toString('base64') });
    await g.gw.checks.idle();
  }, 120_000);
  afterAll(async () => {
    await g?.stop();
    fs.rmSync(files, { recursive: true, force: true });
  });

  it('lists every check-in in site time with device, direction, method, verdict, similarity and photo hash; days present; hours', async () => {
    const r = await evidence();
    expect(r.status, r.text).toBe(200);
    const e = r.json;
    expect(e).toMatchObject({ siteId: SITE, workerId: 'W1', month: '2026-09', timezone: 'Asia/Shanghai', days: ['2026-09-01', '2026-09-02', '2026-09-03'], daysPresent: 3, hours: 18.53 });
    expect(e.hoursByDay).toEqual({ '2026-09-01': 9.03, '2026-09-02': 9.5, '2026-09-03': 0 });
    expect(e.checkins.map((x: any) => x.checkinId)).toEqual(['d1-in', 'd1-out', 'd1-in2', 'd1-out2', 'd2-in', 'd2-out', ODD_ID, 'd5-in']);
    expect(e.checkins[0]).toEqual({
      checkinId: 'd1-in', time: '2026-09-01T07:58:12.000+08:00', date: '2026-09-01', deviceId: 'T1', direction: 'in', method: 'face',
      terminalScore: 0.91, verdict: 'unverified', photoSha256: sha(photoA), countsAsPresence: true,
    });
    expect(e.checkins[7]).toMatchObject({ verdict: 'face_mismatch', similarity: 0.1235, photoSha256: sha(photoB), countsAsPresence: false });
    expect(e.digest).toMatchObject({ format: 'sitegate-evidence-v1', genesis: DIGEST_GENESIS, rows: 1 + 8 + 4 + 1, closed: false });
    expect(e.digest.recorded).toBeUndefined();
    const none = await evidence('W2');
    expect(none.json).toMatchObject({ checkins: [], days: [], daysPresent: 0, hours: 0, digest: { rows: 2 } });
  });

  it('exports CSV (UTF-8 with BOM) from which the digest is recomputed; one changed byte breaks it', async () => {
    const json = (await evidence()).json;
    const res = await fetch(`${g.httpUrl}/api/v1/sites/${SITE}/workers/W1/evidence?month=2026-09&format=csv`, { headers: { authorization: `Bearer ${tokens.auditor}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('sitegate-evidence-digest')).toBe(`sitegate-evidence-v1:${json.digest.root}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = bytes.toString('utf8');
    expect(text).toContain('\r\ncheckin,S-EV,W1,2026-09-03,2026-09-03T08:00:00.000+08:00,"T1-""odd"", id",T1,in,card');
    expect(text.trimEnd().split('\r\n').at(-1)).toBe('total,S-EV,W1,2026-09,,,,,,,,,,,18.53,3');
    const file = path.join(files, 'W1.csv');
    fs.writeFileSync(file, bytes);
    expect(await digestCsvFile(file)).toEqual({ root: json.digest.root, rows: json.digest.rows });
    const ok = digestCommand(file, json.digest.root);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toContain('MATCH');
    // Change one byte (a minute of one check-in): the command says so and fails.
    const forged = Buffer.from(bytes);
    const at = forged.indexOf('T08:00:00.000+08:00');
    forged[at + 5] = '5'.charCodeAt(0);
    fs.writeFileSync(path.join(files, 'forged.csv'), forged);
    const bad = digestCommand(path.join(files, 'forged.csv'), `sitegate-evidence-v1:${json.digest.root}`);
    expect(bad.code, bad.out).toBe(1);
    expect(bad.out).toContain('MISMATCH');
    // Any single byte, anywhere: never the same root (a parse error is not a match either).
    for (let i = 0; i < bytes.length; i += 7) {
      const b = Buffer.from(bytes);
      b[i] = b[i]! ^ 0x01;
      fs.writeFileSync(path.join(files, 'flip.csv'), b);
      const root = await digestCsvFile(path.join(files, 'flip.csv')).then((d) => d.root, () => 'unparsable');
      expect(root, `byte ${i}`).not.toBe(json.digest.root);
    }
  });

  it('records each worker\'s root in the audit trail when the watermark passes the month end, and again as a revision after late data', async () => {
    await g.gw.checks.tick(clock.now());
    expect((await evidence()).json.digest.closed).toBe(false); // the wall clock alone does not close a month
    expect((await g.api('POST', `/sites/${SITE}/devices/ENV1/readings`, { id: 'oct-1', ts: '2026-10-01T00:30:00+08:00', metrics: { temperature_c: 20 } })).json.accepted).toBe(1);
    await g.gw.checks.tick(clock.now());
    const closed = (await evidence()).json;
    expect(closed.digest).toMatchObject({ closed: true, matchesRecorded: true, recorded: { root: closed.digest.root, rows: closed.digest.rows, revision: 1, closedAt: '2026-09-30T16:00:00.000Z' } });
    const entry = g.gw.audit.bySubject(digestSubject(SITE, '2026-09'));
    expect(entry).toHaveLength(1);
    expect(entry[0]!.data).toMatchObject({ workers: { W1: { root: closed.digest.root }, W2: { root: (await evidence('W2')).json.digest.root } } });
    expect(entry[0]!.hash).toBe(closed.digest.recorded.auditHash);
    expect(g.gw.audit.verify()).toMatchObject({ ok: true });
    // The auditor's file and the saved JSON answer: the command compares with the recorded root.
    const res = await g.api('GET', `/sites/${SITE}/workers/W1/evidence?month=2026-09&format=csv`, undefined, { token: tokens.regulator });
    fs.writeFileSync(path.join(files, 'closed.csv'), res.text);
    fs.writeFileSync(path.join(files, 'closed.json'), JSON.stringify(closed));
    const ok = digestCommand(path.join(files, 'closed.csv'), path.join(files, 'closed.json'));
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toContain('audit trail');
    // A late check-in of September: the served list changes, the recorded root does not…
    await g.api('POST', `/sites/${SITE}/devices/T1/checkins`, { id: 'late', workerId: 'W1', ts: '2026-09-10T08:00:00+08:00', direction: 'in', method: 'card' });
    await g.gw.checks.idle();
    const changed = (await evidence()).json;
    expect(changed.digest).toMatchObject({ matchesRecorded: false, recorded: { root: closed.digest.root } });
    expect(digestCommand(path.join(files, 'closed.csv'), changed.digest.root).code).toBe(1);
    // …until the month is re-recorded as revision 2; both revisions stay in the history.
    await g.gw.checks.tick(clock.now());
    const revised = (await evidence()).json;
    expect(revised.digest).toMatchObject({ matchesRecorded: true, recorded: { root: changed.digest.root, revision: 2 } });
    expect(g.gw.audit.bySubject(digestSubject(SITE, '2026-09')).map((e) => e.data.revision)).toEqual([1, 2]);
    await g.gw.checks.tick(clock.now());
    expect(g.gw.audit.bySubject(digestSubject(SITE, '2026-09'))).toHaveLength(2);
  });

  it('serves a check-in photo by its SHA-256 to authorised auditors of that site only', async () => {
    const get = (h: string, token?: string, site = SITE) => fetch(`${g.httpUrl}/api/v1/sites/${site}/photos/${h}`, { headers: { authorization: `Bearer ${token ?? tokens.auditor}` } });
    const ok = await get(sha(photoA));
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await ok.arrayBuffer()).equals(photoA)).toBe(true);
    expect((await get(sha(photoA).toUpperCase())).status).toBe(200);
    expect((await get(sha(photoA), tokens.regulator)).status).toBe(200);
    for (const who of ['auditorOut', 'regulatorOut', 'payroll']) expect((await get(sha(photoA), tokens[who])).status, who).toBe(403);
    // Photo B is referenced at S-EV too (day 5); a photo only another site's check-in refers to is unknown here.
    expect((await get(sha(photoB))).status).toBe(200);
    expect((await get(sha(Buffer.from('not referenced')))).status).toBe(404);
    expect((await get('abc')).status).toBe(400);
    const other = await g.api('POST', '/sites/S-EV2/devices/T2/checkins', { id: 'y', workerId: 'W9', ts: '2026-09-02T08:00:00+08:00', direction: 'in', method: 'face', photo: photoA.subarray(0, 5000).toString('base64') });
    expect(other.json.accepted).toBe(1);
    expect((await get(sha(photoA.subarray(0, 5000)))).status).toBe(404);
    expect((await get(sha(photoA.subarray(0, 5000)), tokens.auditorOut, 'S-EV2')).status).toBe(200);
  });

  it('scopes the evidence to auditors of the site and regulators of its region', async () => {
    for (const [who, status] of [['auditor', 200], ['regulator', 200], ['auditorOut', 403], ['regulatorOut', 403], ['payroll', 403]] as const) {
      expect((await evidence('W1', '', tokens[who])).status, who).toBe(status);
    }
    expect((await evidence('W404')).status).toBe(404);
    expect((await evidence('W1', '&format=xml')).status).toBe(400);
    expect((await g.api('GET', `/sites/${SITE}/workers/W1/evidence?month=2026-9`)).status).toBe(400);
  });
});
