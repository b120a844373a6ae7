/**
 * The hazard engines, one per site, on a thread of their own: rule evaluation (~10–20 µs of CPU
 * per reading of 8 metrics) and snapshot serialisation stay off the main thread, which runs MQTT,
 * ingest and the API. The protocol is request/reply in order; `HazardCheck` sends one request at
 * a time, so the engines always hold exactly the readings the main thread has been told about.
 */
import { getHeapStatistics } from 'node:v8';
import type { AlertSignal } from '../types.ts';
import { serveRpc } from '../../util/workerRpc.ts';
import { HazardEngine, type HazardStats } from './engine.ts';
import { unpackReadings, type PackedReadings } from './readingBatch.ts';
import type { HazardSettings } from './settings.ts';


export type HazardRequest =
  /** Creates a site's engine (from a snapshot document when given) or applies new settings / time zone. */
  | { type: 'site'; siteId: string; timezone: string; settings?: HazardSettings; doc?: string }
  | { type: 'ingest'; readings: PackedReadings }
  /** Snapshot documents (JSON text) of the sites that took readings since the last snapshot. */
  | { type: 'snapshot' }
  | { type: 'stats' }
  /** This thread's heap and external (typed-array) memory in bytes, after a GC when --expose-gc is on. */
  | { type: 'memory' };

export type HazardReply =
  | { type: 'site' }
  /** `failed`: readings the engine threw on (skipped, so one bad reading cannot stall the rules). */
  | { type: 'ingest'; signals: { seq: number; signals: AlertSignal[] }[]; failed?: { count: number; first: string } }
  | { type: 'snapshot'; docs: { siteId: string; doc: string }[] }
  | { type: 'stats'; stats: HazardStats }
  | { type: 'memory'; bytes: number };

const sites = new Map<string, { engine: HazardEngine; timezone: string; dirty: boolean }>();

function handle(req: HazardRequest): HazardReply {
  switch (req.type) {
    case 'site': {
      const s = sites.get(req.siteId);
      if (req.doc !== undefined) {
        const engine = HazardEngine.restore(JSON.parse(req.doc), { timezone: req.timezone, settings: req.settings });
        sites.set(req.siteId, { engine, timezone: req.timezone, dirty: false });
      } else if (s === undefined) {
        sites.set(req.siteId, { engine: new HazardEngine({ timezone: req.timezone, settings: req.settings }), timezone: req.timezone, dirty: true });
      } else if (s.timezone !== req.timezone) {
        s.engine = HazardEngine.restore(s.engine.snapshot(), { timezone: req.timezone, settings: req.settings });
        s.timezone = req.timezone;
        s.dirty = true;
      } else {
        s.engine.setSettings(req.settings);
        s.dirty = true;
      }
      return { type: 'site' };
    }
    case 'ingest': {
      const out: { seq: number; signals: AlertSignal[] }[] = [];
      let failed: { count: number; first: string } | undefined;
      for (const r of unpackReadings(req.readings)) {
        const s = sites.get(r.siteId);
        if (s === undefined) throw new Error(`no engine for site ${r.siteId}`);
        s.dirty = true;
        try {
          const signals = s.engine.ingest({ siteId: r.siteId, deviceId: r.deviceId, ts: r.ts, metrics: r.metrics }, r.intervalS !== undefined ? { intervalS: r.intervalS } : {});
          if (signals.length > 0) out.push({ seq: r.seq, signals });
        } catch (err) {
          if (failed) failed.count++;
          else failed = { count: 1, first: `seq ${r.seq} (${r.deviceId}): ${(err as Error).stack ?? String(err)}` };
        }
      }
      return { type: 'ingest', signals: out, ...(failed ? { failed } : {}) };
    }
    case 'snapshot': {
      const docs: { siteId: string; doc: string }[] = [];
      for (const [siteId, s] of sites) {
        if (!s.dirty) continue;
        docs.push({ siteId, doc: JSON.stringify(s.engine.snapshot()) });
        s.dirty = false;
      }
      return { type: 'snapshot', docs };
    }
    case 'stats': {
      const stats: HazardStats = { readings: 0, samples: 0, late: 0, unchanged: 0, outOfOrder: 0, evaluations: 0, signals: 0, retracted: 0 };
      for (const s of sites.values()) {
        const one = s.engine.stats();
        for (const k of Object.keys(stats) as (keyof HazardStats)[]) stats[k] += one[k];
      }
      return { type: 'stats', stats };
    }
    case 'memory': {
      (globalThis as { gc?: () => void }).gc?.();
      const h = getHeapStatistics();
      return { type: 'memory', bytes: h.used_heap_size + h.external_memory };
    }
  }
}

void serveRpc<HazardRequest, HazardReply>({ handle });
