import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startGateway, type TestGateway } from './support/gateway.ts';

const NOW = Date.now();
const CARD_A = '6219834680028897438';
const CARD_B = '6211352699098784796';

describe('HTTP API (real socket and app.inject)', () => {
  let g: TestGateway;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    g = await startGateway();
    await g.device('S1', 'D1', 'face_terminal', '330106');
    await g.device('S1', 'D2', 'sensor', '330106');
    await g.device('S2', 'D3', 'sensor', '511302');
    await g.api('PUT', '/sites/S1/workers/W1', { name: 'Worker 1', employer: 'E', trade: 'rebar', wageCard: CARD_A });
    const scopes: Record<string, unknown> = {
      regulator: { role: 'regulator', scope: { regions: ['3301'] } },
      regulatorOut: { role: 'regulator', scope: { regions: ['5113'] } },
      constructionUnit: { role: 'construction_unit', scope: { sites: ['S1'] }, label: '杭州某建设集团' },
      constructionUnitOut: { role: 'construction_unit', scope: { sites: ['S2'] } },
      auditor: { role: 'auditor', scope: { sites: ['S1'] } },
      auditorOut: { role: 'auditor', scope: { sites: ['S2'] } },
      payroll: { role: 'payroll', scope: { sites: ['S1'] } },
      terminal: { role: 'terminal', scope: { siteId: 'S1', deviceId: 'D1' } },
      terminalOther: { role: 'terminal', scope: { siteId: 'S1', deviceId: 'D2' } },
      expired: { role: 'admin', expiresAt: new Date(NOW - 1000).toISOString() },
      revoked: { role: 'admin' },
    };
    for (const [name, body] of Object.entries(scopes)) {
      const r = await g.api('POST', '/tokens', body);
      expect(r.status, r.text).toBe(201);
      tokens[name] = r.json.token;
      if (name === 'revoked') expect((await g.api('DELETE', `/tokens/${r.json.id}`)).status).toBe(204);
    }
    tokens.admin = ADMIN_TOKEN;
  });
  afterAll(async () => g?.stop());

  describe('every route refuses every role that must not reach it', () => {
    const checkin = { id: 'm-1', workerId: 'W1', ts: NOW - 1000, direction: 'in', method: 'card' };
    // [method, path, body, roles that may pass, statuses those roles get (default 2xx)]
    const routes: [string, string, unknown, string[], number[]?][] = [
      ['PUT', '/sites/S1', { name: 'S1', regionCode: '330106' }, ['admin']],
      ['GET', '/sites', undefined, ['admin', 'regulator', 'regulatorOut', 'constructionUnit', 'constructionUnitOut']],
      ['GET', '/sites/S1', undefined, ['admin', 'regulator', 'constructionUnit']],
      ['PUT', '/sites/S1/workers/W2', { name: 'W2' }, ['admin']],
      ['GET', '/sites/S1/workers', undefined, ['admin', 'regulator', 'auditor']],
      ['PUT', '/sites/S1/devices/D2', { kind: 'sensor' }, ['admin']],
      ['GET', '/sites/S1/devices', undefined, ['admin', 'regulator', 'constructionUnit']],
      ['POST', '/tokens', { role: 'admin' }, ['admin']],
      ['POST', '/sites/S1/devices/D1/checkins', checkin, ['admin', 'terminal']],
      ['POST', '/sites/S1/devices/D1/readings', { id: 'rr', ts: NOW, metrics: { pm10: 1 } }, ['admin', 'terminal']],
      ['POST', '/sites/S1/wage-payments', [], ['admin', 'payroll']],
      ['GET', '/sites/S1/status', undefined, ['admin', 'regulator', 'constructionUnit']],
      ['GET', '/sites/S1/attendance?month=2026-09', undefined, ['admin', 'regulator', 'auditor']],
      ['GET', '/dead-letters', undefined, ['admin']],
      ['GET', '/metrics', undefined, ['admin']],
      ['GET', '/sites/S1/attendance?month=2026-11', undefined, ['admin', 'regulator', 'auditor']],
      ['GET', '/sites/S1/workers/W1/evidence?month=2026-11', undefined, ['admin', 'regulator', 'auditor']],
      ['GET', '/sites/S1/workers/W1/evidence?month=2026-11&format=csv', undefined, ['admin', 'regulator', 'auditor']],
      ['GET', '/sites/S1/wage-check?month=2026-11', undefined, ['admin', 'regulator', 'auditor']],
      ['GET', `/sites/S1/photos/${'a'.repeat(64)}`, undefined, ['admin', 'regulator', 'auditor', 'constructionUnit'], [404]],
      ['PUT', '/sites/S1/workers/W1/face', 'not a jpeg', ['admin'], [400, 415, 422]],
      ['GET', '/alerts', undefined, ['admin', 'regulator', 'regulatorOut', 'constructionUnit', 'constructionUnitOut']],
      // Contract §6 rights; an alert outside the token's scope answers 404 like an unknown one.
      ['POST', '/alerts/al_nope/ack', {}, ['admin', 'regulator', 'regulatorOut', 'constructionUnit', 'constructionUnitOut'], [404]],
      ['POST', '/alerts/al_nope/rectify', { note: 'done' }, ['admin', 'regulator', 'regulatorOut', 'constructionUnit', 'constructionUnitOut'], [404]],
      ['POST', '/alerts/al_nope/resolve', {}, ['admin', 'regulator', 'regulatorOut'], [404]],
      ['POST', '/alerts/al_nope/reopen', { note: 'photo unclear' }, ['admin', 'regulator', 'regulatorOut'], [404]],
      ['POST', '/sites/S1/photos', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]), ['admin', 'regulator', 'constructionUnit'], [201]],
      ['GET', '/stats/alerts', undefined, ['admin', 'regulator', 'regulatorOut', 'constructionUnit', 'constructionUnitOut']],
      ['PUT', '/webhooks/wh-matrix', { url: 'http://127.0.0.1:9/hook', secret: 'a-secret-of-16-chars', scope: { regions: ['33'] } }, ['admin']],
      ['GET', '/webhooks', undefined, ['admin']],
      ['GET', '/webhooks/wh-matrix/deliveries', undefined, ['admin']],
      ['GET', '/audit/verify', undefined, ['admin']],
      ['POST', '/live/tickets', undefined, ['admin', 'regulator', 'regulatorOut', 'constructionUnit', 'constructionUnitOut']],
    ];
    const roles = ['admin', 'regulator', 'regulatorOut', 'constructionUnit', 'constructionUnitOut', 'auditor', 'auditorOut', 'payroll', 'terminal', 'terminalOther'];
    for (const [method, p, body, may, allowedStatus = [200, 201, 204]] of routes) {
      it(`${method} ${p}`, async () => {
        for (const who of [null, 'garbage', 'expired', 'revoked']) {
          const r = await g.api(method, p, body, { token: who === null ? null : who === 'garbage' ? 'sg_not-a-token' : tokens[who] });
          expect(r.status, `${who} → ${r.text}`).toBe(401);
          expect(r.json).toMatchObject({ error: 'unauthorized' });
        }
        for (const who of roles) {
          const r = await g.api(method, p, body, { token: tokens[who], ...(Buffer.isBuffer(body) ? { contentType: 'image/jpeg' } : {}) });
          if (may.includes(who)) expect(allowedStatus, `${who} → ${r.text}`).toContain(r.status);
          else {
            expect(r.status, `${who} must be refused: ${r.text}`).toBe(403);
            expect(['forbidden', 'wrong_device']).toContain(r.json.error);
          }
        }
      });
    }
  });

  it('health and readiness need no token; the OpenAPI document is served at /docs', async () => {
    expect((await g.api('GET', '/healthz', undefined, { token: null })).json).toEqual({ status: 'ok' });
    const ready = await g.api('GET', '/readyz', undefined, { token: null });
    expect(ready.status).toBe(200);
    expect(ready.json.ledger.lastSeq).toBeGreaterThanOrEqual(0);
    const doc = await g.api('GET', '/docs/json', undefined, { token: null });
    expect(doc.status).toBe(200);
    expect(doc.json.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.json.paths)).toEqual(expect.arrayContaining(['/api/v1/sites/{siteId}', '/api/v1/tokens', '/api/v1/sites/{siteId}/devices/{deviceId}/checkins', '/api/v1/sites/{siteId}/wage-payments']));
    // The document is generated from the zod schemas: the check-in direction enum is in it.
    expect(JSON.stringify(doc.json)).toContain('face_terminal');
  });

  it('answers the same through app.inject() as over the socket', async () => {
    const injected = await g.gw.http.inject({ method: 'GET', url: '/api/v1/sites/S1', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const socket = await g.api('GET', '/sites/S1');
    expect(injected.statusCode).toBe(200);
    expect(injected.json()).toEqual(socket.json);
    const noAuth = await g.gw.http.inject({ method: 'GET', url: '/api/v1/sites/S1' });
    expect(noAuth.statusCode).toBe(401);
  });

  it('registers a device once per installation: secret shown at creation, 409 under another site, rotate replaces it', async () => {
    const again = await g.api('PUT', '/sites/S1/devices/D1', { kind: 'face_terminal', intervalS: 300 });
    expect(again.status).toBe(200);
    expect(again.json.secret).toBeUndefined();
    const clash = await g.api('PUT', '/sites/S2/devices/D1', { kind: 'sensor' });
    expect(clash.status).toBe(409);
    expect(clash.json.error).toBe('conflict');
    const old = (await g.api('POST', '/sites/S2/devices/D3/rotate-secret')).json.secret;
    const rotated = await g.api('POST', '/sites/S2/devices/D3/rotate-secret');
    expect(rotated.status).toBe(200);
    expect(rotated.json.secret).not.toBe(old);
    await expect(mqtt.connectAsync(g.mqttUrl, { username: 'D3', password: old, reconnectPeriod: 0 })).rejects.toThrow();
    const c = await mqtt.connectAsync(g.mqttUrl, { username: 'D3', password: rotated.json.secret, reconnectPeriod: 0 });
    await c.endAsync();
  });

  it('keeps a wage card only as keyed hash + last 4, and reports a card shared by two workers', async () => {
    const w = await g.api('PUT', '/sites/S1/workers/W3', { name: 'Worker 3', wageCard: CARD_B });
    expect(w.json).toMatchObject({ wageCardLast4: '4796' });
    expect(w.text).not.toContain(CARD_B);
    const shared = await g.api('PUT', '/sites/S1/workers/W4', { name: 'Worker 4', wageCard: CARD_B });
    expect(shared.status).toBe(201);
    expect(shared.json.sharedCardWith).toEqual(['W3']);
    const state = fs.readFileSync(path.join(g.dataDir, 'state.db'));
    expect(state.includes(Buffer.from(CARD_B))).toBe(false);
  });

  it('validates bodies with clear errors naming the field', async () => {
    const unknownSetting = await g.api('PUT', '/sites/S9', { name: 'x', regionCode: '3301', settings: { cutoffHuor: 9 } });
    expect(unknownSetting.status).toBe(400);
    expect(unknownSetting.json.error).toBe('bad_request');
    expect(unknownSetting.json.message).toContain('cutoffHuor');
    const badThreshold = await g.api('PUT', '/sites/S9', { name: 'x', regionCode: '3301', settings: { thresholds: { pm10: { warning: 120 }, pm_10: { warning: 1 }, noise_dba: { warning: 60 } } } });
    expect(badThreshold.status).toBe(400);
    expect(badThreshold.json.message).toContain('pm_10');
    expect(badThreshold.json.message).toContain('noise_dba:');
    const goodThreshold = await g.api('PUT', '/sites/S9', { name: 'x', regionCode: '3301', settings: { thresholds: { pm10: { warning: 120 }, 'noise_dba:noise-night-leq': { warning: 45 } } } });
    expect(goodThreshold.status, goodThreshold.text).toBe(201);
    const badTz = await g.api('PUT', '/sites/S9', { name: 'x', regionCode: '3301', timezone: 'Mars/Olympus' });
    expect(badTz.status).toBe(400);
    expect(badTz.json.message).toContain('timezone');
    const badId = await g.api('PUT', '/sites/bad%20id', { name: 'x', regionCode: '3301' });
    expect(badId.status).toBe(400);
    const badJson = await g.api('PUT', '/sites/S9', '{"name":', {});
    expect(badJson.status).toBe(400);
    const wrongType = await g.api('POST', '/sites/S1/devices/D1/checkins', 'a,b', { contentType: 'text/plain' });
    expect(wrongType.status).toBe(415);
    const terminalScope = await g.api('POST', '/tokens', { role: 'terminal' });
    expect(terminalScope.status).toBe(400);
  });

  it('ingests HTTP check-ins through the same pipeline as MQTT: validation, dedupe across transports', async () => {
    const secret = (await g.api('POST', '/sites/S1/devices/D1/rotate-secret')).json.secret;
    const dev = await g.connect('D1', secret);
    await dev.publishAsync('sites/S1/devices/D1/checkin', JSON.stringify({ id: 'x-1', workerId: 'W1', ts: NOW - 10_000, direction: 'in', method: 'card' }), { qos: 1 });
    const r = await g.api('POST', '/sites/S1/devices/D1/checkins', [
      { id: 'x-1', workerId: 'W1', ts: NOW - 10_000, direction: 'in', method: 'card' },
      { id: 'x-2', workerId: 'W1', ts: new Date(NOW - 5_000).toISOString(), direction: 'out', method: 'card' },
      { id: 'x-3', workerId: 'W1', ts: '2026-11-02T17:00:00', direction: 'out', method: 'card' },
    ], { token: tokens.terminal });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ accepted: 1, duplicate: 1, rejected: 1 });
    expect(r.json.results.find((x: any) => x.ref === 'x-3')).toMatchObject({ outcome: 'rejected', reason: 'ts_no_offset' });
    const wrongSite = await g.api('POST', '/sites/S2/devices/D1/checkins', [], {});
    expect(wrongSite.status).toBe(403);
    expect(wrongSite.json.error).toBe('wrong_site');
    const otherDevice = await g.api('POST', '/sites/S1/devices/D2/checkins', [], { token: tokens.terminal });
    expect(otherDevice.json.error).toBe('wrong_device');
  });

  it('takes wage payments as CSV (BOM, CRLF, quoted fields) with a verdict per bad row; a resent file changes nothing', async () => {
    const csv = '\uFEFFid,workerId,period,amount,paidAt,card,status\r\n'
      + `P-1,W1,2026-10,"8,648.00",2026-11-10T10:00:00+08:00,${CARD_A},paid\r\n`
      + `P-2,W1,2026-10,3000.50,2026-11-10T10:00:00+08:00,${CARD_A},paid\r\n`
      + `P-3,W404,2026-10,100,2026-11-10T10:00:00+08:00,${CARD_A},paid\r\n`
      + `P-4,W1,2026-13,100,2026-11-10T10:00:00+08:00,${CARD_A},paid\r\n`
      + `P-5,W1,2026-10,-1,2026-11-10T10:00:00+08:00,${CARD_A},paid\r\n`
      + `P-6,W1,2026-10,100,2026-11-10T10:00:00,${CARD_A},paid\r\n`
      + 'P-7,W1,2026-10,100,2026-11-10T10:00:00+08:00,6219834680028897431,paid\r\n'
      + `"P-8","W1","2026-10","100","2026-11-10T10:00:00+08:00","${CARD_A}","failed"\r\n`;
    const r = await g.api('POST', '/sites/S1/wage-payments', csv, { contentType: 'text/csv; charset=utf-8', token: tokens.payroll });
    expect(r.status, r.text).toBe(200);
    const reasons = Object.fromEntries(r.json.results.map((x: any) => [x.ref, x.reason]));
    expect(reasons).toEqual({ 'P-1': 'schema_invalid', 'P-3': 'unknown_worker', 'P-4': 'bad_period', 'P-5': 'negative_amount', 'P-6': 'ts_no_offset', 'P-7': 'bad_card' });
    expect(r.json).toMatchObject({ accepted: 2, duplicate: 0, rejected: 6 });
    expect(r.json.results.find((x: any) => x.ref === 'P-3').row).toBe(4);
    const again = await g.api('POST', '/sites/S1/wage-payments', csv, { contentType: 'text/csv', token: tokens.payroll });
    expect(again.json).toMatchObject({ accepted: 0, duplicate: 2, rejected: 6 });
    const stored = (await g.gw.ledger.readAfter(0, 10_000)).filter((x) => x.kind === 'wage_payment');
    expect(stored.map((x) => x.msgId).sort()).toEqual(['P-2', 'P-8']);
    expect(JSON.stringify(stored)).not.toContain(CARD_A);
    expect(stored[0]!.body).toMatchObject({ cardLast4: '7438' });
  });

  it('answers unknown sites with 404 for admins and 403 for scoped tokens (existence does not leak)', async () => {
    expect((await g.api('GET', '/sites/NOPE/status')).status).toBe(404);
    expect((await g.api('GET', '/sites/NOPE/status', undefined, { token: tokens.regulator })).status).toBe(403);
  });
});
