/**
 * The face-verification check with a stand-in analyser (the real models run in
 * test/face.e2e.test.ts): the verdict rules and site settings, the bound on photos handed to the
 * pool, never dropping a check-in under load, and resuming unverified check-ins after a restart.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { SiteBody } from '../../../../schemas/src/api.ts';
import { AlertStore } from '../../alerts/alertStore.ts';
import { AuditTrail } from '../../audit/auditTrail.ts';
import type { FaceAnalysis } from '../../face/index.ts';
import { Ledger } from '../../ledger/ledger.ts';
import type { LedgerRecord } from '../../ledger/types.ts';
import { createMetrics } from '../../observability/metrics.ts';
import { FaceRegistry, type FaceAnalyzerHandle } from '../../registry/faceRegistry.ts';
import { Registry } from '../../registry/registry.ts';
import { LiveState } from '../../state/liveState.ts';
import type { CheckContext } from '../check.ts';
import { CheckProgress } from '../progress.ts';
import { CheckRunner } from '../checkRunner.ts';
import { FACE_VERIFICATION, faceVerificationCheck, type FaceVerification } from './faceVerification.ts';

/**
 * Photos are text: `face:<person>:<px>` has one face of that size whose embedding is the
 * person's unit vector; `face:<person>~<other>:<px>` is halfway between two people
 * (cosine ≈ 0.707); anything else has no face.
 */
function embeddingOf(spec: string): Float32Array {
  const e = new Float32Array(128);
  for (const p of spec.split('~')) e[parseInt(crypto.createHash('sha256').update(p).digest('hex').slice(0, 6), 16) % 128] += 1;
  const n = Math.hypot(...e);
  return e.map((x) => x / n);
}

class FakeAnalyzer implements FaceAnalyzerHandle {
  inFlight = 0;
  maxInFlight = 0;
  calls = 0;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  private waiters: { n: number; resolve: () => void }[] = [];

  hold(): void { this.gate = new Promise((r) => { this.open = r; }); }
  /** Resolves once `n` analyses are in flight at the same time. */
  reached(n: number): Promise<void> {
    return this.inFlight >= n ? Promise.resolve() : new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
  release(): void { this.open?.(); this.gate = null; }

  async analyze(jpeg: Buffer): Promise<FaceAnalysis> {
    this.calls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.waiters = this.waiters.filter((w) => (this.inFlight >= w.n ? (w.resolve(), false) : true));
    try {
      await new Promise((r) => setImmediate(r));
      while (this.gate) await this.gate;
      const m = /^face:([^:]+):(\d+)$/.exec(jpeg.toString());
      if (!m) return { ok: false, reason: 'no_face' };
      const face = { box: [0, 0, Number(m[2]), Number(m[2])] as [number, number, number, number], score: 0.9, sizePx: Number(m[2]), landmarks: [] };
      return { ok: true, face, faces: 1, detections: [face], embedding: embeddingOf(m[1]!) };
    } finally {
      this.inFlight--;
    }
  }
}

interface Rig {
  ctx: CheckContext;
  /** The SQLite ledger itself (the check's context holds any ledger, whose reads may answer later). */
  ledger: Ledger;
  faces: FaceRegistry;
  analyzer: FakeAnalyzer;
  runner: CheckRunner;
  check(): FaceVerification;
  checkin(worker: string, photo?: string, opts?: { method?: string; at?: string }): Promise<LedgerRecord>;
  settle(): Promise<void>;
  /** Stops the runner, runs `between` while it is stopped, starts a new one. */
  restart(opts?: { between?: () => Promise<void> | void }): Promise<void>;
  close(): Promise<void>;
}

const rigs: Rig[] = [];
afterEach(async () => { for (const r of rigs.splice(0)) await r.close(); });

async function rig(settings: SiteBody['settings'] = {}): Promise<Rig> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'face-check-'));
  const now = () => Date.parse('2026-09-30T12:00:00Z');
  const registry = new Registry(dir, { scryptN: 1024, now });
  registry.putSite('S1', { name: 'S1', regionCode: '330106', settings });
  for (const w of ['W1', 'W2', 'W3']) registry.putWorker('S1', w, { name: w });
  const ledger = await Ledger.open(dir);
  const audit = new AuditTrail(registry.db);
  const alerts = new AlertStore({ db: registry.db, audit, now });
  const metrics = createMetrics();
  const logger = pino({ level: 'silent' });
  const analyzer = new FakeAnalyzer();
  const faces = new FaceRegistry({ db: registry.db, evidenceDir: ledger.evidenceDir, audit, metrics, logger, now, workers: 1, analyzer });
  const ctx: CheckContext = { registry, ledger, alerts, audit, live: await LiveState.load(ledger), logger, metrics, now, dataDir: dir, faces };
  let n = 0;
  const r: Rig = {
    ctx, ledger, faces, analyzer,
    runner: new CheckRunner(ctx, [faceVerificationCheck], 3_600_000),
    check: () => r.runner.get<FaceVerification>(FACE_VERIFICATION)!,
    async checkin(worker, photo, opts = {}) {
      const id = `c${++n}`;
      const ts = Date.parse(opts.at ?? '2026-09-30T08:00:00+08:00') + n * 1000;
      const files = photo ? [{ sha256: crypto.createHash('sha256').update(photo).digest('hex'), data: Buffer.from(photo) }] : [];
      const rec: LedgerRecord = {
        siteId: 'S1', deviceId: 'FT1', kind: 'checkin', msgId: id, dedupeKey: `FT1/${id}`, ts, receivedAt: ts,
        body: { workerId: worker, direction: 'in', method: opts.method ?? 'face', ...(files[0] ? { photoSha256: files[0].sha256 } : {}) },
      };
      await ledger.append(rec, files);
      return rec;
    },
    async settle() {
      await ledger.drained();
      await r.runner.idle();
    },
    async restart(opts = {}) {
      await r.runner.stop();
      opts.between && (await opts.between());
      r.runner = new CheckRunner(ctx, [faceVerificationCheck], 3_600_000);
      await r.runner.start(ledger);
    },
    async close() {
      await r.runner.stop();
      await faces.close();
      await ledger.close();
      registry.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await r.runner.start(ledger);
  rigs.push(r);
  return r;
}

const verdicts = (r: Rig) => new Map(r.ledger.bySiteKind('S1', 'verdict').map((v) => [v.body.checkinId as string, v.body]));

describe('face verification check', () => {
  it('applies the verdict rules: verified, face_mismatch, no_face (no photo, no face, too small), unverified when not enrolled', async () => {
    const r = await rig();
    await r.faces.enrol('S1', 'W1', Buffer.from('face:alice:200'), 'test');
    await r.faces.enrol('S1', 'W2', Buffer.from('face:bob:200'), 'test');
    const c = {
      genuine: await r.checkin('W1', 'face:alice:120'),
      impostor: await r.checkin('W1', 'face:carol:120'),
      half: await r.checkin('W1', 'face:alice~carol:120'),
      noPhoto: await r.checkin('W2'),
      earth: await r.checkin('W2', 'earth'),
      small: await r.checkin('W2', 'face:bob:40'),
      notEnrolled: await r.checkin('W3', 'face:dave:120'),
      card: await r.checkin('W1', undefined, { method: 'card' }),
    };
    await r.settle();
    const v = verdicts(r);
    expect(v.get(c.genuine.msgId)).toMatchObject({ verdict: 'verified', similarity: 1, threshold: 0.4, minFacePx: 48, checkinKey: c.genuine.dedupeKey });
    expect(v.get(c.impostor.msgId)).toMatchObject({ verdict: 'face_mismatch', similarity: 0 });
    expect(v.get(c.half.msgId)).toMatchObject({ verdict: 'verified' }); // 0.707 ≥ 0.40
    expect(v.get(c.noPhoto.msgId)).toMatchObject({ verdict: 'no_face', reason: 'no_photo' });
    expect(v.get(c.earth.msgId)).toMatchObject({ verdict: 'no_face', reason: 'no_face', photoSha256: c.earth.body.photoSha256 });
    expect(v.get(c.small.msgId)).toMatchObject({ verdict: 'no_face', reason: 'face_too_small', faceSizePx: 40 });
    expect(v.get(c.notEnrolled.msgId)).toMatchObject({ verdict: 'unverified', reason: 'not_enrolled' });
    expect(v.has(c.card.msgId)).toBe(false);
    // Alerts: one per worker and local day (contract §5), the first occurrence's evidence.
    const items = r.ctx.alerts.list({ limit: 100 }).items;
    expect(items.map((a) => [a.kind, a.subject.workerId, a.severity]).sort()).toEqual([
      ['checkin.face_mismatch', 'W1', 'warning'], ['checkin.no_face', 'W2', 'info'],
    ]);
    expect(items.find((a) => a.kind === 'checkin.face_mismatch')!.evidence).toMatchObject({ similarity: 0, threshold: 0.4, photoSha256: c.impostor.body.photoSha256, checkinId: c.impostor.msgId });
    expect(items.find((a) => a.kind === 'checkin.face_mismatch')!.openedAt).toBe(c.impostor.ts);
  });

  it('uses the site\'s faceThreshold and minFacePx', async () => {
    const r = await rig({ faceThreshold: 0.8, minFacePx: 150 });
    await r.faces.enrol('S1', 'W1', Buffer.from('face:alice:200'), 'test');
    const half = await r.checkin('W1', 'face:alice~carol:200');
    const small = await r.checkin('W1', 'face:alice:120');
    await r.settle();
    expect(verdicts(r).get(half.msgId)).toMatchObject({ verdict: 'face_mismatch', threshold: 0.8 });
    expect(verdicts(r).get(small.msgId)).toMatchObject({ verdict: 'no_face', reason: 'face_too_small', minFacePx: 150 });
  });

  it('hands at most two photos per pool worker to the pool; the rest wait, none is dropped', async () => {
    const r = await rig();
    await r.faces.enrol('S1', 'W1', Buffer.from('face:alice:200'), 'test');
    r.analyzer.hold();
    // Committed while the checks were stopped: one step of 40 at the start.
    await r.restart({ between: async () => { for (let i = 0; i < 40; i++) await r.checkin('W1', `face:alice:${100 + i}`); } });
    await r.analyzer.reached(2);
    expect(r.check().backlog).toBe(40);
    expect(Number((await r.ctx.metrics.faceQueueDepth.get()).values[0]!.value)).toBe(38);
    r.analyzer.release();
    await r.settle();
    expect(r.analyzer.maxInFlight).toBe(2);
    expect(verdicts(r).size).toBe(40);
    expect([...verdicts(r).values()].every((v) => v.verdict === 'verified')).toBe(true);
  });

  it('a stop lets the step in hand finish; a restart that lost its cursor (a crash before the commit) verifies again, one verdict and one alert each', async () => {
    const r = await rig();
    await r.faces.enrol('S1', 'W1', Buffer.from('face:alice:200'), 'test');
    r.analyzer.hold();
    await r.restart({ between: async () => { for (let i = 0; i < 10; i++) await r.checkin('W1', i % 2 ? 'face:alice:120' : 'face:mallory:120'); } });
    await r.analyzer.reached(2);
    const stopping = r.restart(); // the step in hand (10 check-ins) ends before the stop does
    r.analyzer.release();
    await stopping;
    await r.settle();
    expect(r.ctx.ledger.bySiteKind('S1', 'verdict')).toHaveLength(10);
    expect(r.analyzer.calls).toBe(10 + 1); // + the enrolment photo
    // Nothing after the cursor: a restart finds nothing to do.
    await r.restart();
    await r.settle();
    expect(r.analyzer.calls).toBe(11);
    // The verdicts were appended but the cursor not committed: the step comes again.
    await r.restart({ between: () => new CheckProgress(r.ctx.registry.db, FACE_VERIFICATION).set('cursor', 0) });
    await r.settle();
    expect(r.analyzer.calls).toBe(21);
    const v = r.ledger.bySiteKind('S1', 'verdict');
    expect(v).toHaveLength(10);
    expect(new Set(v.map((x) => x.body.checkinKey)).size).toBe(10);
    expect(r.ctx.alerts.list({ limit: 100 }).items.filter((a) => a.kind === 'checkin.face_mismatch')).toHaveLength(1);
  });
});
