import crypto from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClock } from './support/clock.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';

const SITE = 'S-CAM';
const T0 = '2026-11-02T08:00:00+08:00';
const clock = new TestClock(T0);
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
/** A small JPEG of one colour: distinct images without fixture files. */
const jpeg = (r: number, g: number, b: number) => sharp({ create: { width: 16, height: 12, channels: 3, background: { r, g, b } } }).jpeg().toBuffer();

/**
 * Contract §6 `GET /sites/{siteId}/devices/{deviceId}/snapshots` and camera snapshots through
 * `GET /sites/{siteId}/photos/{sha256}`: snapshots published over MQTT by a camera, listed by
 * arrival time (the injected clock), paged, served as the bytes that arrived, within scopes.
 */
describe('camera snapshots', () => {
  let g: TestGateway;
  const tokens: Record<string, string> = {};
  const images: Buffer[] = [];
  let otherSiteImage: Buffer;

  const get = async (path: string, token: string | null = tokens.regulator!) => {
    const res = await fetch(`${g.httpUrl}/api/v1${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const bytes = Buffer.from(await res.arrayBuffer());
    let json: any;
    try { json = JSON.parse(bytes.toString()); } catch { json = undefined; }
    return { status: res.status, type: res.headers.get('content-type'), bytes, json };
  };

  beforeAll(async () => {
    g = await startGateway({}, { checks: [], now: clock.now });
    const cam1 = await g.connect('CAM-1', await g.device(SITE, 'CAM-1', 'camera', '330106'));
    const cam2 = await g.connect('CAM-2', await g.device(SITE, 'CAM-2', 'camera', '330106'));
    const cam9 = await g.connect('CAM-9', await g.device('S-ELSE', 'CAM-9', 'camera', '511302'));
    for (const [name, body] of Object.entries({
      regulator: { role: 'regulator', scope: { regions: ['3301'] } }, regulatorOut: { role: 'regulator', scope: { regions: ['5113'] } },
      unit: { role: 'construction_unit', scope: { sites: [SITE] } }, auditor: { role: 'auditor', scope: { sites: [SITE] } },
    })) tokens[name] = (await g.api('POST', '/tokens', body)).json.token;
    // Three frames a minute apart on CAM-1 (QoS 1: each is durable when its PUBACK is back), one on CAM-2, one elsewhere.
    for (let i = 0; i < 3; i++) {
      images.push(await jpeg(40 * i, 100, 200));
      await cam1.publishAsync(`sites/${SITE}/devices/CAM-1/snapshot`, images[i]!, { qos: 1 });
      clock.advance(60_000);
    }
    await cam2.publishAsync(`sites/${SITE}/devices/CAM-2/snapshot`, await jpeg(1, 2, 3), { qos: 1 });
    otherSiteImage = await jpeg(250, 0, 0);
    await cam9.publishAsync('sites/S-ELSE/devices/CAM-9/snapshot', otherSiteImage, { qos: 1 });
    await Promise.all([cam1, cam2, cam9].map((c) => c.endAsync()));
  }, 60_000);
  afterAll(async () => g?.stop());

  it('lists a camera\'s snapshots by arrival time, oldest first, and pages them', async () => {
    const all = await get(`/sites/${SITE}/devices/CAM-1/snapshots`);
    expect(all.status).toBe(200);
    const t = (min: number) => new Date(Date.parse(T0) + min * 60_000).toISOString();
    expect(all.json).toEqual({ items: images.map((b, i) => ({ ts: t(i), sha256: sha(b), bytes: b.length })) });

    const p1 = await get(`/sites/${SITE}/devices/CAM-1/snapshots?limit=2`);
    expect(p1.json.items.map((x: { sha256: string }) => x.sha256)).toEqual([sha(images[0]!), sha(images[1]!)]);
    expect(p1.json.next).toEqual(expect.any(String));
    const p2 = await get(`/sites/${SITE}/devices/CAM-1/snapshots?limit=2&cursor=${p1.json.next}`);
    expect(p2.json).toEqual({ items: [expect.objectContaining({ sha256: sha(images[2]!) })] });

    // since is inclusive, RFC 3339 with an offset or epoch milliseconds.
    const since = await get(`/sites/${SITE}/devices/CAM-1/snapshots?since=${encodeURIComponent('2026-11-02T08:01:00+08:00')}`);
    expect(since.json.items.map((x: { ts: string }) => x.ts)).toEqual([t(1), t(2)]);
    expect((await get(`/sites/${SITE}/devices/CAM-1/snapshots?since=${Date.parse(T0) + 120_000}`)).json.items).toHaveLength(1);
    expect((await get(`/sites/${SITE}/devices/CAM-2/snapshots`)).json.items).toHaveLength(1);
  });

  it('serves a snapshot as the bytes that arrived, to the site\'s construction unit too; not through another site', async () => {
    const h = sha(images[1]!);
    for (const who of ['regulator', 'unit', 'auditor']) {
      const photo = await get(`/sites/${SITE}/photos/${h}`, tokens[who]!);
      expect(photo.status, who).toBe(200);
      expect(photo.type).toBe('image/jpeg');
      expect(photo.bytes.equals(images[1]!)).toBe(true);
    }
    // Another site's snapshot is unknown here; out of region is refused.
    expect((await get(`/sites/${SITE}/photos/${sha(otherSiteImage)}`)).status).toBe(404);
    expect((await get(`/sites/${SITE}/photos/${h}`, tokens.regulatorOut!)).status).toBe(403);
  });

  it('keeps the read scope: 401 without a token, 403 out of scope or for auditors, 404 for a device not of the site', async () => {
    const path = `/sites/${SITE}/devices/CAM-1/snapshots`;
    expect((await get(path, null)).status).toBe(401);
    expect((await get(path, tokens.regulatorOut!)).status).toBe(403);
    expect((await get(path, tokens.auditor!)).status).toBe(403);
    expect((await get(path, tokens.unit!)).status).toBe(200);
    expect((await get('/sites/S-ELSE/devices/CAM-9/snapshots', tokens.unit!)).status).toBe(403);
    const wrongSite = await get(`/sites/${SITE}/devices/CAM-9/snapshots`);
    expect(wrongSite.status).toBe(404);
    expect(wrongSite.json.error).toBe('not_found');
    expect((await get(`/sites/${SITE}/devices/NOPE/snapshots`)).status).toBe(404);
  });

  it('answers bad parameters with a 400 that says which', async () => {
    const base = `/sites/${SITE}/devices/CAM-1/snapshots`;
    for (const [q, says] of [
      ['limit=0', 'limit'], ['limit=many', 'limit'], ['since=yesterday', 'since'], ['since=2026-11-02T08:00:00', 'since'],
      ['cursor=not-a-cursor', 'cursor'], [`since=0&cursor=${Buffer.from('1.1').toString('base64url')}`, 'cursor'],
    ]) {
      const r = await get(`${base}?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json.error, q).toBe('bad_request');
      expect(r.json.message + JSON.stringify(r.json.details ?? ''), q).toContain(says);
    }
  });
});
