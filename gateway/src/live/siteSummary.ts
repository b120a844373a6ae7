import type { Alerts } from '../state/types.ts';
import { isOverdue, type AlertView } from '../alerts/alertRecord.ts';
import { siteToday } from '../attendance/today.ts';
import type { Broker } from '../broker/broker.ts';
import type { Clock } from '../clock/clock.ts';
import type { AnyLedgerStore } from '../ledger/types.ts';
import type { Registry, Site } from '../registry/registry.ts';
import type { LiveState } from '../state/liveState.ts';

/** Online: connected now, or its latest status says so (HTTP-only terminals). One rule for status and the live snapshot. */
export function deviceOnline(broker: Pick<Broker, 'connectedDevices'>, live: LiveState, deviceId: string): boolean {
  return broker.connectedDevices.has(deviceId) || live.devices.get(deviceId)?.status?.state === 'online';
}

/** One site as the regulator's screen opens on it (contract §6 `snapshot` event). */
export interface SiteSummary {
  siteId: string;
  name: string;
  regionCode: string;
  timezone: string;
  devices: { total: number; online: number; offline: string[] };
  /** Open, acked or rectified alerts per level, and how many of them missed their deadline. */
  openByLevel: { 1: number; 2: number; 3: number };
  overdue: number;
  keyStaffPresentToday: { workerId: string; keyRole: string; firstCheckin: string }[];
  /** The alerts still being handled, with their state and history, so a page can act on them. */
  alerts: AlertView[];
}

export interface SummaryDeps {
  registry: Registry;
  ledger: AnyLedgerStore;
  live: LiveState;
  broker: Pick<Broker, 'connectedDevices'>;
  alerts: Alerts;
  now: Clock;
}

const ACTIVE_STATES = ['open', 'acked', 'rectified'] as const;
/** A screen shows this many of a site's active alerts (highest level first); the rest are counted and listed by GET /alerts. */
const MAX_ALERTS_PER_SITE = 200;
/** Counted exactly up to this many active alerts per state and site (GET /stats/alerts counts any number). */
const MAX_COUNTED = 1000;

export async function siteSummary(d: SummaryDeps, site: Site): Promise<SiteSummary> {
  const now = d.now();
  const devices = d.registry.listDevices(site.siteId);
  const offline = devices.filter((x) => !deviceOnline(d.broker, d.live, x.deviceId)).map((x) => x.deviceId);
  const active = ACTIVE_STATES.flatMap((state) => d.alerts.list({ siteIds: [site.siteId], state, limit: MAX_COUNTED }).items)
    .sort((a, b) => b.level - a.level || a.openedAt - b.openedAt);
  const openByLevel = { 1: 0, 2: 0, 3: 0 };
  for (const a of active) openByLevel[Math.min(3, Math.max(1, a.level)) as 1 | 2 | 3]++;
  const views = active.slice(0, MAX_ALERTS_PER_SITE).map((a) => d.alerts.view(a));
  // "Today" in event time: the wall clock while the site is live, its latest event otherwise (as GET …/status).
  const today = await siteToday(d.registry, d.ledger, site, d.live.watermark(site.siteId, now, 0) ?? now);
  return {
    siteId: site.siteId, name: site.name, regionCode: site.regionCode, timezone: site.timezone,
    devices: { total: devices.length, online: devices.length - offline.length, offline },
    openByLevel, overdue: active.filter((a) => isOverdue(a, now)).length,
    keyStaffPresentToday: today.keyStaffPresentToday.map((w) => ({ workerId: w.workerId, keyRole: w.keyRole, firstCheckin: new Date(w.firstCheckin).toISOString() })),
    alerts: views,
  };
}
