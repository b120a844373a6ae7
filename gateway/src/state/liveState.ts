import type { AnyLedgerStore } from '../ledger/types.ts';
import type { Site } from '../registry/registry.ts';

/** Allowed lateness of messages still in flight from other devices (domain.md "Calendar"): 10 min. */
export const DEFAULT_LATENESS_S = 600;
import type { StoredRecord } from '../ledger/types.ts';

export interface DeviceLive {
  lastSeen?: number;
  lastEventTs?: number;
  status?: { state: 'online' | 'offline'; ts: number; firmware?: string; batteryPct?: number };
  latest: Map<string, { value: number; ts: number }>;
}

/**
 * What the gateway knows right now about each device and site, kept in memory from ledger
 * commits (and rebuilt from the ledger's recent history on start): last message, last status,
 * latest value of each metric, and each site's latest event time (the base of its watermark).
 */
export class LiveState {
  readonly devices = new Map<string, DeviceLive>();
  /** siteId → latest event time (ms) of any accepted device message (domain.md "watermark"). */
  readonly siteLatestEvent = new Map<string, number>();
  /** siteId → wall-clock arrival of that latest event. */
  readonly siteLatestArrival = new Map<string, number>();

  /**
   * Follows the ledger's commits and rebuilds from its recent records (at most `rebuildRecords`).
   * It listens before it reads, so a commit while the read is out (a ledger whose reads answer
   * later) is not missed; `apply` keeps maxima, so a record applied twice or out of order changes
   * nothing.
   */
  static async load(ledger: AnyLedgerStore, opts: { rebuildRecords?: number } = {}): Promise<LiveState> {
    const state = new LiveState();
    ledger.onCommitted((records) => { for (const r of records) state.apply(r); });
    const after = Math.max(0, ledger.lastSeq - (opts.rebuildRecords ?? 200_000));
    for (const r of await ledger.scan(['reading', 'status', 'checkin', 'snapshot'], after)) state.apply(r);
    return state;
  }

  /**
   * The site's event-time watermark (domain.md "Time-triggered decisions"): its latest event time
   * minus the allowed lateness; while the site is live (latest event within 1 h of the wall clock)
   * it advances with the wall clock, so a silent morning still passes the cut-off. A replay of an
   * old month never moves it to today.
   */
  watermark(siteId: string, now: number, latenessMs = DEFAULT_LATENESS_S * 1000): number | undefined {
    const latest = this.siteLatestEvent.get(siteId);
    if (latest === undefined) return undefined;
    const live = latest >= now - 3_600_000;
    return (live ? Math.max(latest, now) : latest) - latenessMs;
  }

  /** The watermark with the site's own `lateness` setting (domain.md "Site settings"). */
  siteWatermark(site: Pick<Site, 'siteId' | 'settings'>, now: number): number | undefined {
    return this.watermark(site.siteId, now, (site.settings.lateness ?? DEFAULT_LATENESS_S) * 1000);
  }

  device(deviceId: string): DeviceLive {
    let d = this.devices.get(deviceId);
    if (!d) this.devices.set(deviceId, (d = { latest: new Map() }));
    return d;
  }

  apply(r: StoredRecord): void {
    if (r.kind === 'wage_payment' || r.kind === 'verdict' || r.kind === 'alert') return; // records of the past; they do not move a watermark
    const d = this.device(r.deviceId);
    d.lastSeen = Math.max(d.lastSeen ?? 0, r.receivedAt);
    d.lastEventTs = Math.max(d.lastEventTs ?? 0, r.ts);
    if ((this.siteLatestEvent.get(r.siteId) ?? -Infinity) < r.ts) {
      this.siteLatestEvent.set(r.siteId, r.ts);
      this.siteLatestArrival.set(r.siteId, r.receivedAt);
    }
    const b = r.body as Record<string, unknown>;
    if (r.kind === 'reading') {
      // Entries are updated in place (readers copy them): no object per metric per reading.
      const metrics = b.metrics as Record<string, number>;
      for (const metric in metrics) {
        const prev = d.latest.get(metric);
        if (!prev) d.latest.set(metric, { value: metrics[metric]!, ts: r.ts });
        else if (prev.ts <= r.ts) { prev.value = metrics[metric]!; prev.ts = r.ts; }
      }
    } else if (r.kind === 'status') {
      if (!d.status || d.status.ts <= r.ts) {
        d.status = { state: b.state as 'online' | 'offline', ts: r.ts, ...(b.firmware ? { firmware: b.firmware as string } : {}), ...(b.batteryPct !== undefined ? { batteryPct: b.batteryPct as number } : {}) };
      }
    }
  }
}
