/**
 * The hazard rule engine (domain.md "Hazards — thresholds on event time"): pure and
 * deterministic, no I/O and no wall clock. One engine per site (its time zone decides day and
 * night). `ingest` places a reading by its own timestamp, evaluates every rule of its metrics at
 * the samples whose windows it falls in, and returns the raise/clear signals for the alert store.
 *
 * Order independence: every (device, metric, rule) keeps the transitions that the samples held
 * imply, as a fold over them in event-time order. A late reading re-runs the fold from its own
 * sample until the state is again what it was, past the windows it falls in; the alerts are thus
 * a function of the readings, not of their arrival order, and signals carry the difference
 * (withdrawing, with `retracts`, alerts that late data disprove). A reading more than 24 h older
 * than its device's latest is not evaluated (domain.md "Event times": counted as `late`).
 *
 * Restart: `snapshot()` returns plain JSON (samples still inside the re-evaluation horizon and
 * every rule's transitions); `HazardEngine.restore(json)` continues exactly where it stopped.
 * Re-ingesting readings already held (a ledger replay after the snapshot point) is a no-op and
 * emits nothing, so replaying from a little before the snapshot neither misses nor repeats alerts.
 */
import type { AlertSignal } from '../types.ts';
import { DAY_MS } from './aggregates.ts';
import { SiteCalendar } from '../../calendar/siteCalendar.ts';
import {
  SEVERITY,
  applyTransition,
  closedState,
  copyState,
  episodesOf,
  sameState,
  sameTransitions,
  signalsBetween,
  stateAfter,
  step,
  type Transition,
} from './history.ts';
import { HazardSnapshot } from './snapshot.ts';
import { HazardSettings, RULES_BY_METRIC, resolveLimits } from './settings.ts';
import { Series } from './series.ts';

/** domain.md "Event times": older than this behind the device's latest reading is `late`. */
export const LATE_HORIZON_MS = DAY_MS;
/** Older samples kept beyond the look-back: previous sample, interpolation bracket, gaps. */
const KEEP_OLDER = LEARN_GAPS + 2;
import { Context, LEARN_GAPS, newTrack, prune, type DeviceState, type SeriesState, type Track } from './tracks.ts';
import type { HazardAlert, HazardDevice, HazardEngineOptions, HazardReading, HazardStats } from './engineTypes.ts';

export type { HazardAlert, HazardDevice, HazardEngineOptions, HazardReading, HazardStats } from './engineTypes.ts';

export class HazardEngine {
  readonly timezone: string;
  private settings: HazardSettings | undefined;
  private readonly intervalOf: ((deviceId: string) => number | undefined) | undefined;
  private readonly calendar: SiteCalendar;
  private readonly context: Context;
  /** Scratch states of `reevaluate` (the fold's, and the previous history's at the same sample). */
  private readonly state = closedState();
  private readonly oldState = closedState();
  private readonly devices = new Map<string, DeviceState>();
  private readonly counters: HazardStats = {
    readings: 0,
    samples: 0,
    late: 0,
    unchanged: 0,
    outOfOrder: 0,
    evaluations: 0,
    signals: 0,
    retracted: 0,
  };

  constructor(options: HazardEngineOptions) {
    this.calendar = new SiteCalendar(options.timezone);
    this.timezone = this.calendar.timeZone;
    this.context = new Context(this.calendar);
    this.settings = options.settings === undefined ? undefined : HazardSettings.parse(options.settings);
    this.intervalOf = options.intervalOf;
  }

  /**
   * Places a reading and returns the signals it causes, in event-time order per key. Metrics with
   * no rule are ignored here (they are still stored upstream).
   */
  ingest(reading: HazardReading, device: HazardDevice = {}): AlertSignal[] {
    const { siteId, deviceId, ts } = reading;
    if (!Number.isFinite(ts)) return [];
    const dev = this.device(siteId, deviceId);
    if (ts < dev.latest - LATE_HORIZON_MS) {
      this.counters.late++;
      return [];
    }
    this.counters.readings++;
    if (ts > dev.latest) dev.latest = ts;
    const intervalS = this.settings?.devices?.[deviceId]?.intervalS ?? device.intervalS ?? this.intervalOf?.(deviceId);
    const registeredMs = intervalS !== undefined && intervalS > 0 ? intervalS * 1000 : undefined;
    const out: AlertSignal[] = [];
    for (const metric in reading.metrics) {
      const value = reading.metrics[metric];
      if (typeof value !== 'number' || !Number.isFinite(value) || !RULES_BY_METRIC.has(metric)) continue;
      const series = this.series(dev, metric);
      const { outcome, index, from } = series.data.insert(ts, value);
      if (outcome === 'unchanged') {
        this.counters.unchanged++;
        continue;
      }
      this.counters.samples++;
      if (index < series.data.end - 1) this.counters.outOfOrder++;
      for (const track of series.tracks) this.reevaluate(dev, series, track, index, from, registeredMs, out);
      const cutoff = dev.latest - LATE_HORIZON_MS - series.lookbackMs;
      series.data.evictBefore(cutoff, KEEP_OLDER);
      for (const track of series.tracks) prune(track, cutoff);
    }
    this.counters.signals += out.length;
    return out;
  }

  /** Replaces the settings; limits apply from the next sample on (history is not re-judged). */
  setSettings(settings: HazardSettings | undefined): void {
    this.settings = settings === undefined ? undefined : HazardSettings.parse(settings);
    for (const dev of this.devices.values()) {
      for (const series of dev.series.values()) for (const track of series.tracks) track.limits = undefined;
    }
  }

  /**
   * Alerts implied by the readings held: every open alert, and cleared ones whose samples are
   * still within the re-evaluation horizon (older ones are final and belong to the alert store).
   */
  alerts(): HazardAlert[] {
    const out: HazardAlert[] = [];
    for (const dev of this.devices.values()) {
      for (const series of dev.series.values()) {
        for (const track of series.tracks) {
          for (const e of episodesOf(track.transitions)) {
            out.push({
              kind: track.target.kind,
              siteId: track.target.siteId,
              key: track.target.key,
              subject: { ...track.target.subject },
              severity: SEVERITY[e.severity],
              openedAt: e.openedAt,
              clearedAt: e.clearedAt,
              evidence: e.steps[e.steps.length - 1].evidence,
            });
          }
        }
      }
    }
    return out.sort((a, b) => a.openedAt - b.openedAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  stats(): HazardStats {
    return { ...this.counters };
  }

  snapshot(): HazardSnapshot {
    const devices: HazardSnapshot['devices'] = [];
    for (const dev of this.devices.values()) {
      devices.push({
        siteId: dev.siteId,
        deviceId: dev.deviceId,
        latest: dev.latest,
        series: [...dev.series.values()].map((s) => ({
          metric: s.metric,
          ...s.data.toJSON(),
          tracks: s.tracks.map((t) => ({ rule: t.rule.id, transitions: t.transitions })),
        })),
      });
    }
    return {
      version: 1,
      timezone: this.timezone,
      ...(this.settings !== undefined ? { settings: this.settings } : {}),
      stats: this.stats(),
      devices: structuredClone(devices),
    };
  }

  /** Rebuilds an engine from `snapshot()`; options override the snapshot's zone and settings. */
  static restore(json: unknown, options: Partial<HazardEngineOptions> = {}): HazardEngine {
    const snap = HazardSnapshot.parse(json);
    const engine = new HazardEngine({
      timezone: options.timezone ?? snap.timezone,
      settings: 'settings' in options ? options.settings : snap.settings,
      intervalOf: options.intervalOf,
    });
    Object.assign(engine.counters, snap.stats);
    for (const d of snap.devices) {
      const dev = engine.device(d.siteId, d.deviceId);
      dev.latest = d.latest;
      for (const s of d.series) {
        if (!RULES_BY_METRIC.has(s.metric)) continue;
        const series = engine.series(dev, s.metric, Series.fromJSON(s));
        for (const saved of s.tracks) {
          const track = series.tracks.find((t) => t.rule.id === saved.rule);
          if (track === undefined) continue;
          track.transitions = saved.transitions as Transition[];
          track.state = stateAfter(track.transitions, track.transitions.length);
        }
      }
    }
    return engine;
  }

  private device(siteId: string, deviceId: string): DeviceState {
    const id = `${siteId}\u0000${deviceId}`;
    let dev = this.devices.get(id);
    if (dev === undefined) {
      dev = { siteId, deviceId, latest: -Infinity, series: new Map() };
      this.devices.set(id, dev);
    }
    return dev;
  }

  private series(dev: DeviceState, metric: string, data?: Series): SeriesState {
    let series = dev.series.get(metric);
    if (series === undefined) {
      const rules = RULES_BY_METRIC.get(metric) ?? [];
      series = {
        metric,
        data: data ?? new Series(),
        lookbackMs: Math.max(0, ...rules.map((r) => r.lookbackMs)),
        tracks: rules.map((rule) => newTrack(dev, metric, rule)),
      };
      dev.series.set(metric, series);
    }
    return series;
  }

  /**
   * Re-runs the rule's fold from sample k (just placed) until its state is again the one it had,
   * once past every sample whose evaluation reads sample k; splices the new transitions in.
   * `from`: the earliest time whose transitions the new sample may change (a bucket's time before
   * it took the sample; series.ts).
   */
  private reevaluate(
    dev: DeviceState,
    series: SeriesState,
    track: Track,
    k: number,
    from: number,
    registeredMs: number | undefined,
    out: AlertSignal[],
  ): void {
    const data = series.data;
    const ts = data.ts;
    const end = data.end;
    const tk = ts[k];
    const old = track.transitions;
    let p0 = old.length;
    const since = Math.min(tk, from);
    while (p0 > 0 && old[p0 - 1].at >= since) p0--;
    const state = this.state;
    if (p0 === old.length) copyState(track.state, state);
    else copyState(stateAfter(old, p0), state);
    const oldState = this.oldState;
    copyState(state, oldState);

    track.limits ??= resolveLimits(track.rule, series.metric, this.settings, dev.deviceId);
    const ctx = this.context;
    ctx.ts = ts;
    ctx.v = data.v;
    ctx.n = data.n;
    ctx.sum = data.sum;
    ctx.energy = data.energy;
    ctx.max = data.max;
    ctx.version = data.version;
    ctx.memo = track.memo;
    ctx.first = data.first;
    ctx.end = end;
    ctx.metric = series.metric;
    ctx.limits = track.limits;
    ctx.registeredMs = registeredMs;

    // Evaluations read a sample until `reach` after the next one (window, 72 h of rate), and the
    // learnt interval reads the LEARN_GAPS gaps before each sample.
    const reachTs = (k + 1 < end ? ts[k + 1] : tk) + track.rule.reachMs;
    const reachIndex = k + LEARN_GAPS + 1;
    const fresh: Transition[] = [];
    let oi = p0;
    let converged = -1;
    for (let j = k; j < end; j++) {
      ctx.j = j;
      this.counters.evaluations++;
      const obs = track.rule.observe(ctx);
      if (obs !== undefined) step(state, obs, ts[j], fresh, track.evidence);
      while (oi < old.length && old[oi].at <= ts[j]) applyTransition(oldState, old[oi++]);
      if (j >= reachIndex && ts[j] >= reachTs && sameState(state, oldState)) {
        converged = j;
        break;
      }
    }
    const to = converged >= 0 ? oi : old.length;
    if (sameTransitions(old, p0, to, fresh)) return;
    const before = episodesOf(old);
    track.transitions = old.slice(0, p0).concat(fresh, old.slice(to));
    if (converged < 0) copyState(state, track.state);
    const signals = signalsBetween(track.target, before, episodesOf(track.transitions));
    for (const s of signals) {
      if (s.type === 'clear' && s.retracts !== undefined) this.counters.retracted++;
      out.push(s);
    }
  }
}
