import fs from 'node:fs';
import path from 'node:path';
import type mqtt from 'mqtt';
import sharp from 'sharp';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClock } from './support/clock.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { readEvents } from './support/sse.ts';

const clock = new TestClock('2026-11-02T09:00:00+08:00');
const NOW = clock.now();
const SCREENSHOTS = path.resolve(import.meta.dirname, '../tmp');

/**
 * The live feed (contract §2, §6) and the regulator's page: one stream per site or per region with
 * a snapshot first and Last-Event-ID resume, over real HTTP and MQTT; the page in Debian's
 * Chromium through playwright-core, Chinese by default, with the actions each role may take.
 * The gateway's clock is injected; the checks are off, so the alerts here are the test's own.
 */
describe('live feed (SSE) and the regulator\'s live page', () => {
  let g: TestGateway;
  const devices: Record<string, mqtt.MqttClient> = {};
  const tokens: Record<string, string> = {};
  let n = 0;
  const reading = (site: string, device: string, metrics: Record<string, number>) =>
    devices[device]!.publishAsync(`sites/${site}/devices/${device}/telemetry`, JSON.stringify({ id: `r-${++n}`, ts: NOW + n, metrics }), { qos: 1 });
  const raise = (siteId: string, deviceId: string, metric: string, severity: 'warning' | 'critical', message = `${metric} above its limit`) =>
    g.gw.alerts.apply({ type: 'raise', kind: 'hazard.threshold', siteId, subject: { deviceId, metric }, key: `k-${++n}`, severity, openedAt: NOW, message, evidence: {} })!;
  const stream = async (query: string, o: { token?: string; lastEventId?: string } = {}) => {
    const headers: Record<string, string> = { authorization: `Bearer ${o.token ?? tokens.regulator}` };
    if (o.lastEventId) headers['last-event-id'] = o.lastEventId;
    return fetch(`${g.httpUrl}/api/v1/live?${query}`, { headers });
  };

  beforeAll(async () => {
    g = await startGateway({}, { checks: [], now: clock.now });
    for (const [site, device, kind, region] of [
      ['S1', 'ENV-1', 'sensor', '330106'], ['S3', 'ENV-3', 'sensor', '330102'], ['S3', 'CAM-3', 'camera', '330102'], ['S2', 'ENV-2', 'sensor', '511302'],
    ] as const) devices[device] = await g.connect(device, await g.device(site, device, kind, region));
    await g.api('PUT', '/sites/S1', { name: '滨江一号地块', regionCode: '330106' });
    await g.api('PUT', '/sites/S3', { name: '西湖文化广场', regionCode: '330102' });
    for (const [name, body] of Object.entries({
      regulator: { role: 'regulator', scope: { regions: ['3301'] }, label: '杭州市住建局' },
      regulatorOut: { role: 'regulator', scope: { regions: ['5113'] } },
      unit: { role: 'construction_unit', scope: { sites: ['S1'] }, label: '建设单位甲' },
      auditor: { role: 'auditor', scope: { sites: ['S1'] } },
    })) tokens[name] = (await g.api('POST', '/tokens', body)).json.token;
  }, 60_000);
  afterAll(async () => {
    await Promise.all(Object.values(devices).map((d) => d.endAsync()));
    await g?.stop();
  });

  it('streams a site\'s snapshot, readings and alerts to a ticket holder; tickets are single-use and scoped', async () => {
    const { ticket, role } = (await g.api('POST', '/live/tickets', undefined, { token: tokens.regulator })).json;
    expect(role).toBe('regulator');
    const res = await fetch(`${g.httpUrl}/api/v1/live?siteId=S1&ticket=${ticket}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = readEvents(res, 3);
    await reading('S1', 'ENV-1', { pm10: 151 });
    raise('S1', 'ENV-1', 'pm10', 'warning');
    const got = await events;
    expect(got[0]).toMatchObject({ event: 'snapshot', data: { sites: [{ siteId: 'S1', name: '滨江一号地块', devices: { total: 1 } }] } });
    expect(got[1]).toMatchObject({ event: 'reading', data: { siteId: 'S1', deviceId: 'ENV-1', metrics: { pm10: 151 } } });
    expect(got[2]).toMatchObject({ event: 'alert', data: { event: 'opened', kind: 'hazard.threshold', siteId: 'S1', state: 'open' } });
    expect(Number(got[1]!.id)).toBeGreaterThan(Number(got[0]!.id));
    expect(Number(got[2]!.id)).toBeGreaterThan(Number(got[1]!.id));

    expect((await fetch(`${g.httpUrl}/api/v1/live?siteId=S1&ticket=${ticket}`)).status).toBe(401);
    const t2 = (await g.api('POST', '/live/tickets', undefined, { token: tokens.regulator })).json.ticket;
    expect((await fetch(`${g.httpUrl}/api/v1/live?siteId=S2&ticket=${t2}`)).status).toBe(403);
    expect((await fetch(`${g.httpUrl}/api/v1/live?siteId=S1`)).status).toBe(401);
  });

  it('one stream for the sites of a region: both of 3301, none of another region\'s', async () => {
    const res = await stream('regions=3301');
    expect(res.status).toBe(200);
    const events = readEvents(res, 2);
    await reading('S2', 'ENV-2', { pm10: 10 }); // another region: never on this stream
    await reading('S3', 'ENV-3', { pm10: 20 });
    const [snap, next] = await events;
    expect(snap!.event).toBe('snapshot');
    expect(snap!.data.sites.map((s: { siteId: string }) => s.siteId)).toEqual(['S1', 'S3']);
    expect(snap!.data.sites[0]).toMatchObject({ openByLevel: { 1: expect.any(Number), 2: 0, 3: 0 }, overdue: 0, keyStaffPresentToday: [] });
    expect(next).toMatchObject({ event: 'reading', data: { siteId: 'S3', metrics: { pm10: 20 } } });
    // No region asked: every site in scope.
    const all = await readEvents(await stream(''), 1);
    expect(all[0]!.data.sites.map((s: { siteId: string }) => s.siteId)).toEqual(['S1', 'S3']);
  });

  it('resumes after Last-Event-ID without a gap and without a snapshot; a position it cannot resume from gets a fresh snapshot', async () => {
    const [snap] = await readEvents(await stream('regions=3301'), 1);
    const last = snap!.id!;
    // While nobody listens: a reading, another region's reading, an alert.
    await reading('S1', 'ENV-1', { noise_dba: 66 });
    await reading('S2', 'ENV-2', { noise_dba: 1 });
    const a = raise('S3', 'ENV-3', 'noise_dba', 'critical');
    await g.gw.ledger.drained();
    const res = await stream('regions=3301', { lastEventId: last });
    const got = await readEvents(res, 2);
    expect(got.map((e) => e.event)).toEqual(['reading', 'alert']);
    expect(got[0]!.data).toMatchObject({ siteId: 'S1', metrics: { noise_dba: 66 } });
    expect(got[1]!.data).toMatchObject({ id: a.id, event: 'opened', siteId: 'S3' });
    expect(Number(got[0]!.id)).toBeGreaterThan(Number(last));
    // The page's way (a new ticket cannot carry the header): lastEventId as a parameter.
    const viaParam = await readEvents(await stream(`regions=3301&lastEventId=${got[0]!.id}`), 1);
    expect(viaParam[0]).toMatchObject({ event: 'alert', id: got[1]!.id });
    // An id ahead of this ledger (another installation's) starts over with a snapshot.
    expect((await readEvents(await stream('regions=3301', { lastEventId: '999999999' }), 1))[0]!.event).toBe('snapshot');
  });

  it('answers bad parameters and foreign scopes with a 4xx that says why', async () => {
    for (const [q, status, who] of [
      ['siteId=S1&regions=3301', 400, 'regulator'], ['regions=33x1', 400, 'regulator'], ['regions=3301&lastEventId=abc', 400, 'regulator'],
      ['regions=5113', 403, 'regulator'], ['regions=3301', 403, 'regulatorOut'], ['regions=3301', 403, 'auditor'],
    ] as const) {
      const res = await stream(q, { token: tokens[who]! });
      expect(res.status, q).toBe(status);
      const body = await res.json();
      expect(body.error, q).toBe(status === 400 ? 'bad_request' : 'forbidden');
    }
  });

  describe('in a real browser (Debian chromium through playwright-core)', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-background-networking'] });
    });
    afterAll(async () => browser?.close());

    async function open(token: string, query = '', viewport?: { width: number; height: number }): Promise<Page> {
      const page = await browser.newPage(viewport ? { viewport, isMobile: true, hasTouch: true } : {});
      await page.goto(`${g.httpUrl}/live${query}`);
      await page.fill('#token', token);
      await page.click('#connect');
      await page.waitForSelector('body[data-snapshot]');
      return page;
    }

    it('a regulator of 3301 sees both its sites, an alert raised while the page was closed, a new reading and a camera frame; in Chinese', async () => {
      const closed = raise('S3', 'ENV-3', 'pm2_5', 'critical', '<img src=x onerror=alert(1)> PM2.5 超限');
      const page = await open(tokens.regulator!, '?regions=3301');
      expect(await page.textContent('#title')).toBe('工地实时监管');
      expect(await page.$$eval('.site', (els) => els.map((e) => (e as HTMLElement).dataset.site))).toEqual(['S1', 'S3']);
      expect(await page.$('.site[data-site="S2"]')).toBeNull();
      const li = await page.waitForSelector(`li.alert[data-alert="${closed.id}"]`);
      expect(await li.textContent()).toContain('<img src=x onerror=alert(1)> PM2.5 超限');
      expect(await li.textContent()).toContain('一级');
      expect(await li.textContent()).toContain('监测值超限');
      expect(await page.$('#alerts img')).toBeNull();
      // A regulator may resolve; the buttons are labelled in Chinese.
      expect(await li.$('button[data-action="resolve"]')).not.toBeNull();

      await page.click('.site[data-site="S1"]');
      await page.waitForSelector('#detail:not([hidden])');
      await reading('S1', 'ENV-1', { noise_dba: 71.5 });
      await page.waitForSelector('#readings td:text-is("71.5")');

      await page.click('.site[data-site="S3"]');
      const frame = await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: 10, g: 120, b: 40 } } }).jpeg().toBuffer();
      await devices['CAM-3']!.publishAsync('sites/S3/devices/CAM-3/snapshot', frame, { qos: 1 });
      const img = await page.waitForSelector('#snapshots img');
      await page.waitForFunction(() => { const i = document.querySelector('#snapshots img') as HTMLImageElement | null; return !!i && i.complete && i.naturalWidth === 32; });
      expect(await img.getAttribute('src')).toMatch(/^blob:/);

      // English on request.
      await page.click('#lang');
      expect(await page.textContent('#title')).toBe('Live site supervision');
      // The list is drawn again in the new language: the element is looked up afresh.
      expect(await page.textContent(`li.alert[data-alert="${closed.id}"]`)).toContain('reading beyond its limit');
      await page.close();
    });

    it('a construction unit acks and rectifies with a photo from the page; a regulator resolves; the history says who', async () => {
      const a = raise('S1', 'ENV-1', 'wind_speed_ms', 'warning');
      const unit = await open(tokens.unit!);
      expect(await unit.$$eval('.site', (els) => els.map((e) => (e as HTMLElement).dataset.site))).toEqual(['S1']);
      const sel = `li.alert[data-alert="${a.id}"]`;
      await unit.waitForSelector(sel);
      expect(await unit.$(`${sel} button[data-action="resolve"]`)).toBeNull();
      await unit.click(`${sel} button[data-action="ack"]`);
      await unit.waitForSelector(`${sel}[data-state="acked"]`);
      // Rectify needs a note: the page says so instead of sending.
      await unit.click(`${sel} button[data-action="rectify"]`);
      await unit.waitForSelector(`${sel} .error:text-is("请填写说明")`);
      const photo = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 200, b: 0 } } }).jpeg().toBuffer();
      await unit.fill(`${sel} input.note`, '已停止吊装作业并加固');
      await unit.setInputFiles(`${sel} input.photo`, { name: 'fix.jpg', mimeType: 'image/jpeg', buffer: photo });
      await unit.click(`${sel} button[data-action="rectify"]`);
      await unit.waitForSelector(`${sel}[data-state="rectified"]`);

      const regulator = await open(tokens.regulator!, '?regions=3301');
      await regulator.waitForSelector(`${sel}[data-state="rectified"]`);
      await regulator.fill(`${sel} input.note`, '现场复核合格');
      await regulator.click(`${sel} button[data-action="resolve"]`);
      await regulator.waitForSelector(sel, { state: 'detached' });
      // The construction unit's page hears the resolution from the stream.
      await unit.waitForSelector(sel, { state: 'detached' });

      const h = (await g.api('GET', `/alerts/${a.id}`)).json;
      expect(h.state).toBe('resolved');
      expect(h.history.map((x: { event: string }) => x.event)).toEqual(['opened', 'acked', 'rectified', 'resolved']);
      expect(h.history[1].by).toContain('建设单位甲');
      expect(h.history[2]).toMatchObject({ note: '已停止吊装作业并加固', photos: [expect.stringMatching(/^[0-9a-f]{64}$/)] });
      expect(h.history[3]).toMatchObject({ note: '现场复核合格', by: expect.stringContaining('杭州市住建局') });
      await unit.close();
      await regulator.close();
    });

    it('is usable on a phone screen (screenshot in tmp/live-phone.png)', async () => {
      const a = raise('S1', 'ENV-1', 'gas_lel_pct', 'critical');
      const page = await open(tokens.regulator!, '?regions=3301', { width: 390, height: 844 });
      const sel = `li.alert[data-alert="${a.id}"]`;
      await page.waitForSelector(sel);
      // Nothing wider than the screen; the site cards stack; the action buttons are on screen and big enough to tap.
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      const cards = await page.$$eval('.site', (els) => els.map((e) => e.getBoundingClientRect().left));
      expect(new Set(cards).size).toBe(1);
      const ack = (await page.$(`${sel} button[data-action="ack"]`))!;
      const box = (await ack.boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(390);
      expect(box.height).toBeGreaterThanOrEqual(32);
      fs.mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SCREENSHOTS, 'live-phone.png'), fullPage: true });
      console.log(`phone screenshot: ${path.join(SCREENSHOTS, 'live-phone.png')}`);
      await ack.tap();
      await page.waitForSelector(`${sel}[data-state="acked"]`);
      await page.close();
    });

    it('reports a refused token on the page', async () => {
      const page = await browser.newPage();
      await page.goto(`${g.httpUrl}/live?regions=3301`);
      await page.fill('#token', 'sg_wrong');
      await page.click('#connect');
      await page.waitForSelector('#state:text-matches("被拒绝")');
      await page.close();
    });
  });
});
