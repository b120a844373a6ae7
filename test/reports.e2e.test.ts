import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializerCompiler } from 'fastify-type-provider-zod';
import { Attendance } from '../schemas/src/api.ts';
import { WageCheck, WorkerEvidence } from '../schemas/src/audit.ts';
import { ADMIN_TOKEN, startGateway, type TestGateway } from './support/gateway.ts';
import { TestClock } from './support/clock.ts';

/**
 * Issue 16: the month-wide reports' bodies are validated and serialised on the report thread and
 * sent as they are. Over real HTTP: the same contract as before (Content-Type, a body the route's
 * own response serializer would produce, the schemas in the OpenAPI document), and a report
 * thread that died is replaced by the next report.
 */
const clock = new TestClock('2026-10-05T12:00:00+08:00');
const SITE = 'S-REP';

/** What fastify-type-provider-zod's serializer makes of a value: the body the routes sent before. */
const serialise = (schema: Parameters<typeof serializerCompiler>[0]['schema'], value: unknown) =>
  serializerCompiler({ schema, method: 'GET', url: '/test', httpStatus: '200' } as never)(value);

describe('month-wide reports from the report thread', () => {
  let g: TestGateway;

  beforeAll(async () => {
    g = await startGateway({}, { now: clock.now });
    await g.device(SITE, 'T1', 'face_terminal');
    for (const w of ['W1', 'W2']) await g.api('PUT', `/sites/${SITE}/workers/${w}`, { name: w });
    await g.api('PUT', `/sites/${SITE}/workers/K1`, { name: 'K1', keyRole: 'project_manager' });
    const c = (workerId: string, id: string, ts: string, direction: string) => ({ id, workerId, ts, direction, method: 'card' });
    const r = await g.api('POST', `/sites/${SITE}/devices/T1/checkins`, [
      c('W1', 'a', '2026-09-01T08:00:00+08:00', 'in'), c('W1', 'b', '2026-09-01T17:00:00+08:00', 'out'),
      c('K1', 'c', '2026-09-02T08:00:00+08:00', 'in'), c('K1', 'd', '2026-09-02T12:30:00+08:00', 'out'),
    ]);
    expect(r.json.accepted, r.text).toBe(4);
    await g.gw.checks.idle();
  }, 60_000);
  afterAll(async () => {
    await g?.stop();
  });

  it('sends attendance, wage check and evidence as JSON the route\'s response serializer would have produced', async () => {
    for (const [path, schema] of [
      [`/sites/${SITE}/attendance?month=2026-09`, Attendance],
      [`/sites/${SITE}/wage-check?month=2026-09`, WageCheck],
      [`/sites/${SITE}/workers/W1/evidence?month=2026-09`, WorkerEvidence],
    ] as const) {
      const r = await fetch(`${g.httpUrl}/api/v1${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      const text = await r.text();
      expect(r.status, text).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(text).toBe(serialise(schema, JSON.parse(text)));
    }
    const att = (await g.api('GET', `/sites/${SITE}/attendance?month=2026-09`)).json;
    expect(att.workers.map((w: { workerId: string; daysPresent: number }) => [w.workerId, w.daysPresent])).toEqual([['K1', 1], ['W1', 1], ['W2', 0]]);
  });

  it('keeps the response schemas in the OpenAPI document', async () => {
    const doc = (await g.api('GET', '/docs/json', undefined, { token: null })).json;
    const ok = (p: string) => doc.paths[`/api/v1${p}`].get.responses['200'].content['application/json'].schema;
    expect(Object.keys(ok('/sites/{siteId}/attendance').properties)).toEqual(Object.keys(Attendance.shape));
    expect(Object.keys(ok('/sites/{siteId}/wage-check').properties)).toEqual(Object.keys(WageCheck.shape));
    expect(Object.keys(ok('/sites/{siteId}/workers/{workerId}/evidence').properties)).toEqual(Object.keys(WorkerEvidence.shape));
  });

  it('starts a new report thread on the next request when the thread died', async () => {
    const before = await g.api('GET', `/sites/${SITE}/attendance?month=2026-09`);
    const dead = await g.gw.reports.thread();
    const died = new Promise<Error>((resolve) => dead.onDeath(resolve));
    await dead.worker.terminate(); // as a crash would: not through close()
    expect((await died).message).toMatch(/exited/);
    expect(dead.alive).toBe(false);

    const after = await g.api('GET', `/sites/${SITE}/attendance?month=2026-09`);
    expect(after.status, after.text).toBe(200);
    expect(after.text).toBe(before.text);
    const csv = await g.api('GET', `/sites/${SITE}/workers/W1/evidence?month=2026-09&format=csv`);
    expect(csv.status, csv.text).toBe(200);
    expect(await g.gw.reports.thread()).not.toBe(dead);
  });
});
