import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ARCFACE_TEMPLATE,
  DEFAULT_THRESHOLD,
  FaceEngine,
  FacePool,
  cosine,
  estimateSimilarity,
  verdictFor,
  type FaceAnalysis,
} from './index.ts';
import { decodeRgb } from './image.ts';
import { letterboxResize, packBgrPlanar, upscaleToBgrPlanar } from './detector.ts';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/faces');

interface ExpectedImage {
  person: string | null;
  width: number;
  height: number;
  faces: number;
  score?: number;
  box_xywh?: [number, number, number, number];
  landmarks?: [number, number][];
}
interface Expected {
  images: Record<string, ExpectedImage>;
  cosine: Record<string, Record<string, number>>;
}
interface Manifest {
  persons: Record<string, string[]>;
  noFace: string[];
}

const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as Expected;
const manifest = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as Manifest;
const photo = (name: string): Buffer => fs.readFileSync(path.join(FIXTURES, name));

const faceImages = Object.values(manifest.persons).flat();
const genuinePairs = Object.values(manifest.persons)
  .filter((files) => files.length >= 2)
  .map((files) => [files[0], files[1]] as const);
const impostorPairs: (readonly [string, string])[] = [];
for (let i = 0; i < faceImages.length; i++) {
  for (let j = i + 1; j < faceImages.length; j++) {
    if (expected.images[faceImages[i]].person !== expected.images[faceImages[j]].person) impostorPairs.push([faceImages[i], faceImages[j]]);
  }
}
const EARTH = manifest.noFace[0];

let engine: FaceEngine;
const analyses: Record<string, Extract<FaceAnalysis, { ok: true }>> = {};

beforeAll(async () => {
  engine = await FaceEngine.load();
  for (const name of faceImages) {
    const a = await engine.analyze(photo(name));
    if (!a.ok) throw new Error(`${name}: ${a.reason}`);
    analyses[name] = a;
  }
});

afterAll(async () => {
  await engine?.close();
});

describe('fixtures and expected.json', () => {
  it('covers 9 genuine pairs, many impostor pairs and one no-face photo', () => {
    expect(genuinePairs).toHaveLength(9);
    expect(impostorPairs.length).toBeGreaterThan(100);
    expect(expected.images[EARTH].faces).toBe(0);
  });

  it('detections match the reference pipeline (score ±0.02, landmarks ±2 px)', () => {
    for (const name of faceImages) {
      const exp = expected.images[name];
      const a = analyses[name];
      expect(a.faces, name).toBe(exp.faces);
      expect(Math.abs(a.face.score - exp.score!), name).toBeLessThanOrEqual(0.02);
      a.face.landmarks.forEach(([x, y], k) => {
        expect(Math.abs(x - exp.landmarks![k][0]), `${name} lm${k}.x`).toBeLessThanOrEqual(2);
        expect(Math.abs(y - exp.landmarks![k][1]), `${name} lm${k}.y`).toBeLessThanOrEqual(2);
      });
      expect(a.face.sizePx).toBeCloseTo(Math.max(exp.box_xywh![2], exp.box_xywh![3]), 0);
    }
  });

  it('embeddings are 128-d and L2-normalised; cosines match the reference matrix (±0.03)', () => {
    for (const name of faceImages) {
      const e = analyses[name].embedding;
      expect(e).toBeInstanceOf(Float32Array);
      expect(e.length).toBe(128);
      expect(Math.hypot(...e)).toBeCloseTo(1, 5);
    }
    for (const [a, b] of [...genuinePairs, ...impostorPairs]) {
      expect(Math.abs(cosine(analyses[a].embedding, analyses[b].embedding) - expected.cosine[a][b]), `${a} vs ${b}`).toBeLessThanOrEqual(0.03);
    }
  });

  it('every genuine pair scores above every impostor pair', () => {
    const g = genuinePairs.map(([a, b]) => cosine(analyses[a].embedding, analyses[b].embedding));
    const i = impostorPairs.map(([a, b]) => cosine(analyses[a].embedding, analyses[b].embedding));
    expect(Math.min(...g)).toBeGreaterThan(Math.max(...i));
    // keep a margin on both sides of the default threshold
    expect(Math.min(...g)).toBeGreaterThanOrEqual(DEFAULT_THRESHOLD + 0.05);
    expect(Math.max(...i)).toBeLessThanOrEqual(DEFAULT_THRESHOLD - 0.1);
  });
});

describe('verify (default threshold 0.40, min face 48 px)', () => {
  it.each(genuinePairs)('genuine %s / %s is verified both ways', async (a, b) => {
    const ab = await engine.verify(photo(b), analyses[a].embedding);
    const ba = await engine.verify(photo(a), analyses[b].embedding);
    for (const r of [ab, ba]) {
      expect(r.verdict).toBe('verified');
      expect(r.similarity!).toBeGreaterThanOrEqual(0.4);
      expect(r.faceSizePx!).toBeGreaterThanOrEqual(48);
    }
  });

  it('every impostor pair is rejected as face_mismatch', async () => {
    for (const [a, b] of impostorPairs) {
      const r = verdictFor(analyses[b], analyses[a].embedding);
      expect(r.verdict, `${a} vs ${b}: ${r.similarity}`).toBe('face_mismatch');
    }
    // and through the full engine path for a few of them
    for (const [a, b] of impostorPairs.slice(0, 5)) {
      expect((await engine.verify(photo(b), analyses[a].embedding)).verdict).toBe('face_mismatch');
    }
  });

  it('the earth photo gives no_face', async () => {
    expect(await engine.analyze(photo(EARTH))).toEqual({ ok: false, reason: 'no_face' });
    const r = await engine.verify(photo(EARTH), analyses[faceImages[0]].embedding);
    expect(r).toMatchObject({ verdict: 'no_face', reason: 'no_face' });
    expect(r.similarity).toBeUndefined();
  });

  it('an undecodable photo gives no_face', async () => {
    expect(await engine.analyze(Buffer.from('not a jpeg at all'))).toEqual({ ok: false, reason: 'undecodable' });
    expect(await engine.analyze(Buffer.alloc(0))).toEqual({ ok: false, reason: 'undecodable' });
    const truncated = photo('peggy_whitson_2.jpg').subarray(0, 2000);
    expect((await engine.verify(truncated, analyses['peggy_whitson_1.jpg'].embedding)).verdict).toBe('no_face');
  });

  it('a face smaller than minFacePx gives no_face even when it is the right person', async () => {
    const small = await sharp(photo('peggy_whitson_2.jpg')).resize(96, 96).jpeg({ quality: 95 }).toBuffer();
    const a = await engine.analyze(small);
    expect(a.ok).toBe(true);
    const r = await engine.verify(small, analyses['peggy_whitson_1.jpg'].embedding);
    expect(r).toMatchObject({ verdict: 'no_face', reason: 'face_too_small' });
    expect(r.faceSizePx!).toBeLessThan(48);
  });

  it('threshold and minFacePx are configurable', async () => {
    const [a, b] = genuinePairs[0];
    expect((await engine.verify(photo(b), analyses[a].embedding, { threshold: 0.99 })).verdict).toBe('face_mismatch');
    expect((await engine.verify(photo(b), analyses[a].embedding, { minFacePx: 1000 })).verdict).toBe('no_face');
  });
});

describe('decoding', () => {
  it("the JS upscaler reproduces sharp's linear upscale (≤ 1 grey level), incl. crops", async () => {
    for (const name of ['carl_walz_1.jpg', 'rex_walheim_2.jpg', 'reid_wiseman_2.jpg']) {
      const { image } = await decodeRgb(photo(name));
      const regions = [undefined, { left: 30, top: 20, width: 97, height: 120 }];
      for (const region of regions) {
        const vips = await letterboxResize(image, 640, region, 'libvips');
        const js = await letterboxResize(image, 640, region, 'js');
        expect('rgb' in vips && 'src' in js).toBe(true);
        if (!('rgb' in vips) || !('src' in js)) continue;
        const a = new Float32Array(3 * 640 * 640);
        const b = new Float32Array(3 * 640 * 640);
        packBgrPlanar(vips.rgb, vips.width, vips.height, a);
        upscaleToBgrPlanar(js.src, js.region, js.width, js.height, b);
        let maxDiff = 0;
        let same = 0;
        for (let i = 0; i < a.length; i++) {
          const d = Math.abs(a[i] - b[i]);
          if (d > maxDiff) maxDiff = d;
          if (d === 0) same++;
        }
        expect(maxDiff, `${name} ${JSON.stringify(region)}`).toBeLessThanOrEqual(1);
        expect(same / a.length).toBeGreaterThan(0.97);
      }
    }
  });

  it('applies the EXIF orientation before detection and reports coordinates in the displayed frame', async () => {
    const name = 'ron_garan_2.jpg';
    // Pixels stored rotated 90° counter-clockwise, EXIF orientation 6 says "rotate 90° clockwise".
    const rotated = await sharp(photo(name)).rotate(-90).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    const a = await engine.analyze(rotated);
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    const exp = expected.images[name];
    expect(Math.abs(a.face.landmarks[0][0] - exp.landmarks![0][0])).toBeLessThan(6);
    expect(Math.abs(a.face.landmarks[0][1] - exp.landmarks![0][1])).toBeLessThan(6);
    expect(cosine(a.embedding, analyses['ron_garan_1.jpg'].embedding)).toBeGreaterThan(DEFAULT_THRESHOLD);
  });

  it('shrinks large photos at decode time but reports boxes in source pixels', async () => {
    const name = 'michael_lopez_alegria_2.jpg';
    const big = await sharp(photo(name)).resize(3000, 3000, { kernel: 'cubic' }).jpeg({ quality: 90 }).toBuffer();
    const a = await engine.analyze(big);
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    const k = 3000 / 512;
    const exp = expected.images[name];
    expect(a.face.sizePx / (Math.max(exp.box_xywh![2], exp.box_xywh![3]) * k)).toBeGreaterThan(0.93);
    expect(a.face.sizePx / (Math.max(exp.box_xywh![2], exp.box_xywh![3]) * k)).toBeLessThan(1.07);
    expect(Math.abs(a.face.box[0] - exp.box_xywh![0] * k)).toBeLessThan(40);
    expect(cosine(a.embedding, analyses['michael_lopez_alegria_1.jpg'].embedding)).toBeGreaterThan(DEFAULT_THRESHOLD + 0.1);
  });

  it('keeps genuine check-ins taken as wide terminal frames above the threshold (refinement pass)', async () => {
    // Check-in photo shrunk to 256 px and placed in a 1280×720 frame: the face is ~100 px in the
    // first-pass detector input, which alone gives poor landmarks (chris_ferguson drops to 0.12 and
    // reid_wiseman to 0.35 without FaceEngineOptions.refine).
    const sims: Record<string, number> = {};
    for (const [a, b] of genuinePairs) {
      const frame = await sharp(photo(b))
        .resize(256, 256)
        .extend({ left: 700, right: 324, top: 300, bottom: 164, background: { r: 90, g: 95, b: 110 } })
        .jpeg({ quality: 90 })
        .toBuffer();
      const r = await engine.analyze(frame);
      expect(r.ok, b).toBe(true);
      if (!r.ok) continue;
      // coordinates are in the frame: the face lies inside the pasted photo
      expect(r.face.box[0]).toBeGreaterThan(700);
      expect(r.face.box[1]).toBeGreaterThan(300);
      sims[a] = cosine(r.embedding, analyses[a].embedding);
      for (const other of faceImages.filter((n) => expected.images[n].person !== expected.images[b].person)) {
        expect(cosine(r.embedding, analyses[other].embedding), `${other} vs wide ${b}`).toBeLessThan(DEFAULT_THRESHOLD - 0.05);
      }
    }
    for (const [a, sim] of Object.entries(sims)) {
      // reid_wiseman is the hardest pair (0.472 at full size; 0.40–0.46 once the check-in face is
      // downscaled, refined or not): it has no margin at 0.40, so only a floor is pinned for it.
      if (a.startsWith('reid_wiseman')) expect(sim, a).toBeGreaterThanOrEqual(0.37);
      else expect(sim, a).toBeGreaterThanOrEqual(DEFAULT_THRESHOLD + 0.1);
    }
  });

  it('accepts greyscale and PNG input', async () => {
    const grey = await sharp(photo('chris_ferguson_2.jpg')).greyscale().jpeg().toBuffer();
    const png = await sharp(photo('chris_ferguson_2.jpg')).png().toBuffer();
    for (const buf of [grey, png]) {
      const r = await engine.verify(buf, analyses['chris_ferguson_1.jpg'].embedding);
      expect(r.verdict).toBe('verified');
    }
  });
});

describe('enrol (min face 60 px)', () => {
  it('accepts a clear single-face portrait', async () => {
    const r = await engine.enrol(photo('reid_wiseman_1.jpg'));
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(cosine(r.embedding, analyses['reid_wiseman_1.jpg'].embedding)).toBeCloseTo(1, 5);
      expect(r.modelId).toMatch(/mobilefacenet/);
    }
  });

  it('rejects a non-JPEG buffer as image_undecodable', async () => {
    expect(await engine.enrol(Buffer.from('%PDF-1.4 definitely not an image'))).toMatchObject({ ok: false, reason: 'image_undecodable' });
  });

  it('rejects the earth photo as no_face', async () => {
    expect(await engine.enrol(photo(EARTH))).toMatchObject({ ok: false, reason: 'no_face' });
  });

  it('rejects two faces side by side as multiple_faces', async () => {
    const left = photo('cady_coleman_1.jpg');
    const right = photo('ron_garan_1.jpg');
    const twoFaces = await sharp({ create: { width: 1024, height: 512, channels: 3, background: { r: 0, g: 0, b: 0 } } })
      .composite([
        { input: left, left: 0, top: 0 },
        { input: right, left: 512, top: 0 },
      ])
      .jpeg({ quality: 92 })
      .toBuffer();
    const a = await engine.analyze(twoFaces);
    expect(a.ok && a.faces).toBe(2);
    expect(await engine.enrol(twoFaces)).toMatchObject({ ok: false, reason: 'multiple_faces', faces: 2 });
  });

  it('rejects a small downscaled face as face_too_small', async () => {
    const small = await sharp(photo('john_herrington_1.jpg')).resize(128, 128).jpeg({ quality: 95 }).toBuffer();
    const r = await engine.enrol(small);
    expect(r).toMatchObject({ ok: false, reason: 'face_too_small' });
    if (!r.ok) expect(r.faceSizePx!).toBeLessThan(60);
  });
});

describe('alignment maths', () => {
  it('estimating the template onto itself gives the identity', () => {
    const m = estimateSimilarity(ARCFACE_TEMPLATE);
    [1, 0, 0, 0, 1, 0].forEach((v, i) => expect(m[i]).toBeCloseTo(v, 9));
  });

  it('recovers a known rotation + scale + translation exactly', () => {
    const th = 0.3, s = 1.7, tx = 12, ty = -5;
    const c = Math.cos(th) * s, d = Math.sin(th) * s;
    // src = inverse-transformed template, so that M(src) = template
    const src = ARCFACE_TEMPLATE.map(([u, v]) => {
      const x = u - tx, y = v - ty;
      return [(c * x + d * y) / (s * s), (-d * x + c * y) / (s * s)] as [number, number];
    });
    const m = estimateSimilarity(src);
    expect(m[0]).toBeCloseTo(c, 9);
    expect(m[3]).toBeCloseTo(d, 9);
    expect(m[2]).toBeCloseTo(tx, 9);
    expect(m[5]).toBeCloseTo(ty, 9);
  });
});

describe('FacePool', () => {
  let pool: FacePool;
  const latencies: number[] = [];

  beforeAll(async () => {
    pool = await FacePool.create({ onLatency: (ms) => latencies.push(ms) });
  });

  afterAll(async () => {
    await pool?.close();
  });

  it('has one worker per core', () => {
    expect(pool.stats()).toEqual({ queueDepth: 0, busy: 0, workers: os.availableParallelism() });
  });

  it('runs 20 concurrent analyses, all succeed, and the queue drains to 0', async () => {
    const names = Array.from({ length: 20 }, (_, i) => faceImages[i % faceImages.length]);
    const pending = names.map((n) => pool.analyze(photo(n)));
    const during = pool.stats();
    expect(during.queueDepth).toBe(20 - during.workers);
    expect(during.busy).toBe(during.workers);
    const results = await Promise.all(pending);
    results.forEach((r, i) => {
      expect(r.ok, names[i]).toBe(true);
      if (r.ok) expect(cosine(r.embedding, analyses[names[i]].embedding)).toBeGreaterThan(0.999);
    });
    expect(pool.stats()).toMatchObject({ queueDepth: 0, busy: 0 });
    expect(latencies).toHaveLength(20);
    expect(latencies.every((ms) => ms > 0)).toBe(true);
  });

  it('verifies and enrols through the pool', async () => {
    const [a, b] = genuinePairs[1];
    expect((await pool.verify(photo(b), analyses[a].embedding)).verdict).toBe('verified');
    expect((await pool.verify(photo(EARTH), analyses[a].embedding)).verdict).toBe('no_face');
    expect(await pool.enrol(Buffer.from('garbage'))).toMatchObject({ ok: false, reason: 'image_undecodable' });
  });

  it('replaces a worker that dies and keeps serving', async () => {
    const p2 = await FacePool.create({ workers: 1 });
    try {
      const jpeg = photo(faceImages[0]);
      const caller = Buffer.from(jpeg);
      expect((await p2.analyze(caller)).ok).toBe(true);
      expect(caller.equals(jpeg)).toBe(true); // the caller's buffer is not detached or modified
      // simulate a crash of the only worker (test-only access to internals)
      const slots = (p2 as unknown as { slots: { rpc: { worker: { terminate(): Promise<number> } } }[] }).slots;
      await slots[0].rpc.worker.terminate();
      const r = await p2.analyze(jpeg); // queued until the replacement worker is ready
      expect(r.ok).toBe(true);
      expect(p2.stats()).toMatchObject({ workers: 1, queueDepth: 0 });
    } finally {
      await p2.close();
    }
  });

  it('fails fast when the models cannot be loaded', async () => {
    await expect(FacePool.create({ workers: 1, modelsDir: '/nonexistent/models' })).rejects.toThrow(/face worker could not start: .*nonexistent/);
    await expect(FaceEngine.load('/nonexistent/models')).rejects.toThrow();
  });

  it('rejects work after close()', async () => {
    const p2 = await FacePool.create({ workers: 1 });
    const inflight = p2.analyze(photo(faceImages[0]));
    await p2.close();
    expect(p2.stats().workers).toBe(0);
    await expect(inflight).resolves.toMatchObject({ ok: true });
    await expect(p2.analyze(photo(faceImages[0]))).rejects.toThrow(/closed/);
  });
});

describe('face pool thread priority', () => {
  it.runIf(process.platform === 'linux')('runs its workers at nice 10 and under SCHED_IDLE on Linux, leaving the main thread at normal priority', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    // /proc/<pid>/task/<tid>/stat after the command: field 19 is nice, field 41 the policy (5: SCHED_IDLE).
    const statOf = (tid: string) => {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    };
    const niceOf = (tid: string) => Number(statOf(tid)[16]);
    const policyOf = (tid: string) => Number(statOf(tid)[38]);
    const before = new Set(fs.readdirSync('/proc/self/task'));
    const mainNice = os.getPriority(); // 0 normally; whatever the suite was started with (nice -n 5 …)
    const pool = await FacePool.create({ workers: 1 });
    try {
      const added = fs.readdirSync('/proc/self/task').filter((t) => !before.has(t));
      expect(added.map(niceOf)).toContain(10);
      expect(added.map(policyOf)).toContain(5); // chrt is util-linux, on every Debian
      expect(os.getPriority()).toBe(mainNice);
      expect(policyOf(String(process.pid))).toBe(0);
    } finally {
      await pool.close();
    }
  });
});
