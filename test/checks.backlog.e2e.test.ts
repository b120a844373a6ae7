/**
 * Issue 15: the checks never hold up ingest, sinks or a stop. A check whose start (restore, replay)
 * does not end: the gateway still listens, acknowledges QoS 1 readings and writes them to its sinks,
 * and /readyz says how far behind the checks are; a stop does not wait for it. A check that makes
 * the runner wait (back-pressure): the runner holds at most `maxQueued` records, reads the rest back
 * from the ledger, and every record reaches the check exactly once, in order. A real hazard replay
 * stopped midway saves a snapshot, so the next start replays only what is after it. The device
 * liveness read-back at start (up to 200,000 records) also ends at a stop.
 */
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import type { Check, CheckFactory } from '../gateway/src/checks/check.ts';
import { deviceOfflineCheck } from '../gateway/src/checks/device-offline/deviceOffline.ts';
import { CheckRunner } from '../gateway/src/checks/checkRunner.ts';
import { CheckProgress } from '../gateway/src/checks/progress.ts';
import { hazardCheck, type HazardCheck } from '../gateway/src/checks/hazard/hazardCheck.ts';
import { HazardSnapshotStore } from '../gateway/src/checks/hazard/snapshotStore.ts';
import type { StoredRecord } from '../gateway/src/ledger/types.ts';
import type { Sink } from '../gateway/src/sinks/sink.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { Ledger } from '../gateway/src/ledger/ledger.ts';

const SITE = 'S-BACKLOG';
const T0 = Date.parse('2026-09-01T08:00:00+08:00');

let g: TestGateway | undefined;
afterEach(async () => {
  await g?.stop();
  g = undefined;
});

/** A sink that keeps the records it is given. */
function memorySink(): Sink & { lines: StoredRecord[] } {
  const lines: StoredRecord[] = [];
  return {
    name: 'memory',
    lines,
    async write(batch: StoredRecord[]) { lines.push(...batch); },
    render: (r) => JSON.stringify(r),
    async ping() { return true; },
    async close() {},
  };
}

describe('checks behind ingest', () => {
  it('a check that never finishes starting holds up neither ingest, sinks, /readyz nor the stop', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const stuck: CheckFactory = () => ({ name: 'stuck', start: () => gate, onRecords() {}, stop() { release(); } }) satisfies Check;
    const sink = memorySink();
    g = await startGateway({}, { checks: [stuck], sinks: [sink] }, undefined, { waitForChecks: false });
    const secret = await g.device(SITE, 'ENV-1');
    const c = await g.connect('ENV-1', secret);
    for (let i = 0; i < 20; i++) {
      await c.publishAsync(`sites/${SITE}/devices/ENV-1/telemetry`, JSON.stringify({ id: `r${i}`, ts: T0 + i * 1000, metrics: { pm10: 80 } }), { qos: 1 });
    }
    const lastSeq = g.gw.ledger.lastSeq;
    await expect.poll(() => sink.lines.filter((r) => r.kind === 'reading' && r.deviceId === 'ENV-1').length, { timeout: 10_000 }).toBe(20);
    const ready = await g.api('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json.checks).toMatchObject({ starting: true, lagRecords: lastSeq });
    expect((await g.api('GET', '/metrics')).text).toMatch(new RegExp(`^sitegate_check_lag_records\\{check="stuck"\\} ${lastSeq}$`, 'm'));
    const t0 = performance.now();
    await g.stop();
    g = undefined;
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('a check that throws is retried, then its step skipped, logged and counted per check and phase; the others, ingest and the runner go on', async () => {
    const seen: number[] = [];
    let starts = 0;
    const throwing: CheckFactory = () => ({ name: 'throwing', start() { starts++; }, onRecords() { throw new Error('bad rule'); }, tick() { throw new Error('bad tick'); } });
    const counting: CheckFactory = () => ({ name: 'counting', onRecords(records) { for (const r of records) seen.push(r.seq); } });
    g = await startGateway({}, { checks: [] });
    const runner = new CheckRunner(g.gw.checks['ctx' as never], [throwing, counting], { retryMs: 1, maxAttempts: 3, tickMs: 3_600_000 });
    await runner.start(g.gw.ledger);
    const secret = await g.device(SITE, 'ENV-4');
    const c = await g.connect('ENV-4', secret);
    for (let i = 0; i < 3; i++) await c.publishAsync(`sites/${SITE}/devices/ENV-4/telemetry`, JSON.stringify({ id: `f${i}`, ts: T0 + i * 1000, metrics: { pm10: 80 } }), { qos: 1 });
    await runner.tick(T0);
    const last = g.gw.ledger.lastSeq;
    expect(seen.at(-1)).toBe(last);
    const state = runner.state().checks;
    // Each failing step: tried 3 times (the check restored before each retry), then passed over.
    expect(starts).toBeGreaterThanOrEqual(3);
    expect(state.throwing!.processedSeq).toBe(last);
    expect(state.throwing!.failures).toBeGreaterThanOrEqual(4);
    expect(state.counting!.failures).toBe(0);
    const metrics = (await g.api('GET', '/metrics')).text;
    expect(metrics).toMatch(/^sitegate_check_failures_total\{check="throwing",phase="records"\} [3-9]/m);
    expect(metrics).toMatch(/^sitegate_check_failures_total\{check="throwing",phase="skip"\} [1-9]/m);
    expect(metrics).toMatch(/^sitegate_check_failures_total\{check="throwing",phase="tick"\} 1/m);
    await runner.stop();
  });

  it('a step that changed nothing commits nothing (no fsync per ledger group); one that changed something commits its cursor with it; a stop writes the cursor', async () => {
    let write = false;
    const quiet: CheckFactory = (ctx) => ({
      name: 'quiet',
      onRecords(records) {
        if (write) new CheckProgress(ctx.registry.db, 'quiet').set('last', records.at(-1)!.seq);
      },
    });
    g = await startGateway({}, { checks: [] });
    const runner = new CheckRunner(g.gw.checks['ctx' as never], [quiet], { saveEveryMs: 3_600_000, tickMs: 3_600_000 });
    await runner.start(g.gw.ledger);
    const saved = () => new CheckProgress(g!.gw.registry.db, 'quiet').get('cursor');
    await runner.idle();
    const atStart = saved();
    const secret = await g.device(SITE, 'ENV-5');
    const c = await g.connect('ENV-5', secret);
    for (let i = 0; i < 5; i++) await c.publishAsync(`sites/${SITE}/devices/ENV-5/telemetry`, JSON.stringify({ id: `n${i}`, ts: T0 + i * 1000, metrics: { pm10: 40 } }), { qos: 1 });
    await runner.idle();
    expect(runner.state().checks.quiet!.processedSeq).toBe(g.gw.ledger.lastSeq);
    expect(saved()).toBe(atStart);
    write = true;
    await c.publishAsync(`sites/${SITE}/devices/ENV-5/telemetry`, JSON.stringify({ id: 'n5', ts: T0 + 5000, metrics: { pm10: 40 } }), { qos: 1 });
    await runner.idle();
    expect(saved()).toBe(g.gw.ledger.lastSeq);
    write = false;
    await c.publishAsync(`sites/${SITE}/devices/ENV-5/telemetry`, JSON.stringify({ id: 'n6', ts: T0 + 6000, metrics: { pm10: 40 } }), { qos: 1 });
    await runner.idle();
    expect(saved()).toBeLessThan(g.gw.ledger.lastSeq);
    await runner.stop();
    expect(saved()).toBe(g.gw.ledger.lastSeq);
  });

  it('back-pressure: at most maxQueued records held, the rest read back from the ledger, each delivered once in order', async () => {
    const seen: number[] = [];
    let open!: () => void;
    let opened = new Promise<void>((resolve) => (open = resolve));
    let holding = true;
    const slow: CheckFactory = () => ({
      name: 'slow',
      async prepare() {
        if (holding) await opened;
      },
      onRecords(records) {
        for (const r of records) seen.push(r.seq);
      },
    });
    g = await startGateway({}, { checks: [] });
    const runner = new CheckRunner(g.gw.checks['ctx' as never], [slow], { maxQueued: 50, readBack: 7 });
    await runner.start(g.gw.ledger);
    const secret = await g.device(SITE, 'ENV-2');
    const c = await g.connect('ENV-2', secret);
    const first = g.gw.ledger.lastSeq;
    for (let i = 0; i < 200; i++) {
      await c.publishAsync(`sites/${SITE}/devices/ENV-2/telemetry`, JSON.stringify({ id: `q${i}`, ts: T0 + i * 1000, metrics: { pm10: 80 } }), { qos: 1 });
      expect(runner.state().queued).toBeLessThanOrEqual(50);
    }
    expect(runner.state().readingBack).toBe(true);
    holding = false;
    open();
    opened = Promise.resolve();
    await runner.idle();
    const last = g.gw.ledger.lastSeq;
    expect(last).toBeGreaterThan(first + 199);
    // A check new to the gateway starts at the ledger's beginning: every record, once, in order.
    expect(seen).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    expect(runner.state()).toMatchObject({ lagRecords: 0, queued: 0, readingBack: false });
    await runner.stop();
  });

  it('a hazard replay stopped midway snapshots where it is; the next start replays only the rest', async () => {
    const options = { maxBatch: 1000, snapshotEveryReadings: 2000, replaySnapshotEvery: 2000 };
    g = await startGateway({}, { checks: [hazardCheck(options)] });
    const secret = await g.device(SITE, 'ENV-3');
    // 12,000 readings straight into the ledger, with the hazard check told nothing (as after a crash).
    const hazard = () => g!.gw.checks.get<HazardCheck>('hazard')!;
    // A crash: no snapshot at the stop; the engines' thread just ends.
    hazard().stop = () => (hazard() as unknown as { worker: Worker }).worker.terminate().then(() => undefined);
    await g.gw.checks.stop();
    const records = Array.from({ length: 12_000 }, (_, i) => ({
      kind: 'reading' as const, siteId: SITE, deviceId: 'ENV-3', ts: T0 + i, msgId: `b${i}`, dedupeKey: `ENV-3:b${i}`, receivedAt: T0,
      body: { id: `b${i}`, ts: T0 + i, metrics: { noise_dba: 60 + (i % 7) } },
    }));
    await g.gw.ledger.appendMany(records);
    const total = g.gw.ledger.lastSeq;
    void secret;
    const dataDir = g.dataDir;
    await g.stop({ keepDataDir: true });

    g = await startGateway({}, { checks: [hazardCheck(options)] }, dataDir, { waitForChecks: false });
    await expect.poll(() => hazard().stats().snapshots, { timeout: 30_000, interval: 5 }).toBeGreaterThan(0);
    // Mid-replay, /readyz says the checks are behind (it read 0: the runner started at the ledger's end).
    const ready = await g.api('GET', '/readyz', undefined, { token: null });
    expect(ready.json.checks.lagRecords).toBeGreaterThan(0);
    expect(ready.json.checks.lagRecords).toBe(ready.json.checks.checks.hazard.lagRecords);
    const t0 = performance.now();
    await g.stop({ keepDataDir: true });
    expect(performance.now() - t0).toBeLessThan(10_000);

    g = await startGateway({}, { checks: [hazardCheck(options)] }, dataDir);
    const { snapshotSeq } = new HazardSnapshotStore(g.gw.registry.db).cursor();
    const replayed = hazard().stats().replayed;
    expect(replayed).toBeLessThan(12_000);
    expect(hazard().stats().processedSeq).toBe(total);
    expect(snapshotSeq).toBeGreaterThan(0);
  });

  it('the device-offline read-back at start ends at a stop instead of reading on to the ledger end', async () => {
    g = await startGateway({}, { checks: [] });
    await g.gw.ledger.appendMany(Array.from({ length: 30_000 }, (_, i) => ({
      kind: 'reading' as const, siteId: SITE, deviceId: 'ENV-4', ts: T0 + i, msgId: `o${i}`, dedupeKey: `ENV-4:o${i}`, receivedAt: T0,
      body: { id: `o${i}`, ts: T0 + i, metrics: { pm10: 40 } },
    })));
    const ctx = g.gw.checks['ctx' as never];
    const ledger = g.gw.ledger;
    if (!(ledger instanceof Ledger)) throw new Error('this test runs the embedded gateway, on the SQLite ledger');
    const readAfter = ledger.readAfter.bind(ledger);
    let reads = 0;
    ledger.readAfter = ((...args: Parameters<typeof readAfter>) => { reads++; return readAfter(...args); }) as typeof readAfter;

    // Read to the end: 5,000 records a step and one empty read.
    await deviceOfflineCheck()(ctx).start!(ledger.lastSeq);
    expect(reads).toBe(7);
    // Stopped right after it began: the step in hand, then nothing (it was 2.4 s for 200,000
    // records on the loaded 2-core box, on top of the rest of a SIGTERM's 10 s).
    reads = 0;
    const check = deviceOfflineCheck()(ctx);
    const started = check.start!(ledger.lastSeq);
    await check.stop!();
    await started;
    expect(reads).toBe(1);
  });
});
