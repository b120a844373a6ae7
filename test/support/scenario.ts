import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import type { TestGateway } from './gateway.ts';


const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
export const FACES_DIR = path.join(FIXTURES, 'faces');

export interface ScenarioEvent {
  ts: number;
  via: 'mqtt' | 'http';
  topic?: string;
  payload?: Record<string, unknown>;
  photo?: string;
  method?: string;
  path?: string;
  contentType?: string;
  body?: string;
}

export interface Scenario {
  name: string;
  registry: {
    sites: ({ siteId: string } & Record<string, unknown>)[];
    workers: ({ siteId: string; workerId: string } & Record<string, unknown>)[];
    devices: ({ siteId: string; deviceId: string } & Record<string, unknown>)[];
    faces: { siteId: string; workerId: string; photo: string }[];
  };
  expected: any;
  events: ScenarioEvent[];
}

/** A scenario month from test/fixtures (copied from shared/scenarios, events gzipped). */
export function loadScenario(name = 'public-2026-09'): Scenario {
  const dir = path.join(FIXTURES, 'scenarios', name);
  const events = zlib.gunzipSync(fs.readFileSync(path.join(dir, 'events.jsonl.gz'))).toString('utf8')
    .split('\n').filter(Boolean).map((l) => JSON.parse(l) as ScenarioEvent);
  return {
    name,
    registry: JSON.parse(fs.readFileSync(path.join(dir, 'registry.json'), 'utf8')),
    expected: JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')),
    events,
  };
}

/** Registers the scenario's sites, workers, devices (and, with `faces`, enrolled faces) through the API. */
export async function registerScenario(g: Pick<TestGateway, 'api'>, s: Scenario, opts: { faces?: boolean } = {}): Promise<Record<string, string>> {
  const must = (r: { status: number; text: string }, what: string) => { if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text}`); };
  for (const { siteId, ...body } of s.registry.sites) must(await g.api('PUT', `/sites/${siteId}`, body), `site ${siteId}`);
  for (const { siteId, workerId, ...body } of s.registry.workers) must(await g.api('PUT', `/sites/${siteId}/workers/${workerId}`, body), `worker ${workerId}`);
  const secrets: Record<string, string> = {};
  for (const { siteId, deviceId, ...body } of s.registry.devices) {
    const r = await g.api('PUT', `/sites/${siteId}/devices/${deviceId}`, body);
    must(r, `device ${deviceId}`);
    secrets[deviceId] = r.json.secret;
  }
  if (opts.faces) {
    for (const f of s.registry.faces) {
      must(await g.api('PUT', `/sites/${f.siteId}/workers/${f.workerId}/face`, fs.readFileSync(path.join(FACES_DIR, f.photo)), { contentType: 'image/jpeg' }), `face ${f.workerId}`);
    }
  }
  return secrets;
}

export interface ReplayResult {
  published: number;
  readingsSent: number;
  checkinsSent: number;
  http: { path: string; status: number; json: any }[];
  seconds: number;
}

/**
 * Publishes the scenario's events as its devices would: MQTT QoS 1 with each device's own
 * credentials (a window of `window` publishes in flight), photos attached, and the HTTP events
 * (wage-payment CSVs) posted in order. `extra` lets a test add its own messages per device.
 * `g` is a gateway or anything in front of gateways (a balancer: its MQTT URL and `httpApi`).
 */
export async function replayScenario(g: Pick<TestGateway, 'mqttUrl' | 'api'>, s: Scenario, secrets: Record<string, string>, opts: { window?: number; filter?: (e: ScenarioEvent) => boolean } = {}): Promise<ReplayResult> {
  const window = opts.window ?? 200;
  const clients = new Map<string, mqtt.MqttClient>();
  const photos = new Map<string, string>();
  let inflight = new Set<Promise<unknown>>();
  const result: ReplayResult = { published: 0, readingsSent: 0, checkinsSent: 0, http: [], seconds: 0 };
  const t0 = performance.now();
  for (const e of s.events) {
    if (opts.filter && !opts.filter(e)) continue;
    if (e.via === 'http') {
      await Promise.all(inflight);
      inflight = new Set();
      const r = await g.api(e.method!, e.path!.replace(/^\/api\/v1/, ''), e.body, { contentType: e.contentType! });
      result.http.push({ path: e.path!, status: r.status, json: r.json });
      continue;
    }
    const deviceId = e.topic!.split('/')[3]!;
    let c = clients.get(deviceId);
    if (!c) {
      c = await mqtt.connectAsync(g.mqttUrl, { username: deviceId, password: secrets[deviceId], clientId: `replay-${deviceId}`, reconnectPeriod: 0, protocolVersion: 4 });
      clients.set(deviceId, c);
    }
    const payload = { ...e.payload };
    if (e.photo) {
      if (!photos.has(e.photo)) photos.set(e.photo, fs.readFileSync(path.join(FACES_DIR, e.photo)).toString('base64'));
      payload.photo = photos.get(e.photo);
    }
    const channel = e.topic!.split('/')[4];
    if (channel === 'telemetry') result.readingsSent += Array.isArray((payload as { batch?: unknown[] }).batch) ? (payload as { batch: unknown[] }).batch.length : 1;
    if (channel === 'checkin') result.checkinsSent++;
    const p = c.publishAsync(e.topic!, JSON.stringify(payload), { qos: 1 }).finally(() => inflight.delete(p));
    inflight.add(p);
    result.published++;
    if (inflight.size >= window) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  await Promise.all([...clients.values()].map((c) => c.endAsync()));
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

/** An alert as `GET /alerts` lists it (the fields scenario scoring reads). */
export interface ListedAlert { id: string; kind: string; siteId: string; subject: Record<string, string>; severity: string; state: string; openedAt: string }
/** An entry of expected.json `alerts` / `noAlerts`. */
export interface ExpectedAlert { kind: string; siteId?: string; subject: Record<string, string>; day?: string; severity?: string }

/** Every alert, following the `next` cursor to the last page (`query`: more filters, e.g. `&includeWithdrawn=true`). */
export async function allAlerts(g: Pick<TestGateway, 'api'>, query = ''): Promise<ListedAlert[]> {
  const items: ListedAlert[] = [];
  let cursor: string | undefined;
  for (;;) {
    const r = await g.api('GET', `/alerts?limit=500${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (r.status !== 200) throw new Error(`GET /alerts: ${r.status} ${r.text}`);
    items.push(...r.json.items);
    cursor = r.json.next;
    if (!cursor) return items;
  }
}

/**
 * The acceptance scorer's matching (shared/tools/replay.mjs score()): `matches` for expected
 * alerts and noAlerts (severity where named), `loose` for false positives (severity may differ).
 * Days are in each site's own time zone.
 */
export function alertScorer(s: Scenario) {
  const zones = Object.fromEntries(s.registry.sites.map((x) => [x.siteId, (x.timezone as string | undefined) ?? 'Asia/Shanghai']));
  const localDay = (t: string | number, siteId: string) =>
    new Intl.DateTimeFormat('en-CA', { timeZone: zones[siteId] ?? 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(t));
  const subjectMatches = (want: Record<string, string>, got: Record<string, string>) => Object.entries(want).every(([k, v]) => got?.[k] === v);
  const loose = (exp: ExpectedAlert, a: ListedAlert) => a.kind === exp.kind && (!exp.siteId || a.siteId === exp.siteId)
    && subjectMatches(exp.subject, a.subject) && (!exp.day || localDay(a.openedAt, a.siteId) === exp.day);
  const matches = (exp: ExpectedAlert, a: ListedAlert) => loose(exp, a) && (!exp.severity || a.severity === exp.severity);
  return { matches, loose, localDay };
}
