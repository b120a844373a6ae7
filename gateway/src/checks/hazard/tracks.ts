import { learntInterval } from './aggregates.ts';
import type { SiteCalendar } from '../../calendar/siteCalendar.ts';
import { closedState, type SignalTarget, type TrackState, type Transition } from './history.ts';
import { messageFor } from './messages.ts';
import type { HazardRule, Limits, ObserveContext, Observation, RuleMemo } from './rule.ts';
import type { Series } from './series.ts';

/** Gaps the interval is learnt from (median), and so samples a late reading can still affect. */
export const LEARN_GAPS = 16;

/** The engine's bookkeeping per (device, metric, rule): the transitions its fold over the samples implies. */
export interface Track {
  readonly rule: HazardRule;
  /** The rule's evidence under the limits in force, for transitions. */
  readonly evidence: (obs: Observation) => Record<string, unknown>;
  readonly target: SignalTarget;
  limits: Limits | undefined;
  readonly memo: RuleMemo;
  transitions: Transition[];
  /** State after all transitions. */
  state: TrackState;
}

export interface SeriesState {
  readonly metric: string;
  readonly data: Series;
  readonly tracks: Track[];
  readonly lookbackMs: number;
}

export interface DeviceState {
  readonly siteId: string;
  readonly deviceId: string;
  latest: number;
  readonly series: Map<string, SeriesState>;
}

/** What a rule reads while evaluated at sample `j` (one object, reused: no allocation per evaluation). */
export class Context implements ObserveContext {
  ts!: Float64Array;
  v!: Float64Array;
  n: Float64Array | null = null;
  sum: Float64Array | null = null;
  energy: Float64Array | null = null;
  max: Float64Array | null = null;
  version = 0;
  memo!: RuleMemo;
  first = 0;
  end = 0;
  j = 0;
  metric = '';
  limits!: Limits;
  registeredMs: number | undefined;

  constructor(readonly calendar: SiteCalendar) {}

  intervalMs(): number | undefined {
    return this.registeredMs ?? learntInterval(this, this.j, LEARN_GAPS);
  }
}

export function newTrack(dev: DeviceState, metric: string, rule: HazardRule): Track {
  const key =
    rule.kind === 'hazard.rate'
      ? `hazard.rate:${dev.deviceId}:${metric}`
      : `hazard.threshold:${dev.deviceId}:${metric}:${rule.id}`;
  const track: Track = {
    rule,
    evidence: (obs) => rule.evidence(obs, track.limits as Limits),
    limits: undefined,
    memo: {},
    transitions: [],
    state: closedState(),
    target: {
      kind: rule.kind,
      siteId: dev.siteId,
      key,
      subject: { deviceId: dev.deviceId, metric },
      message: (s) => messageFor(rule, metric, s),
    },
  };
  return track;
}

/** Forgets alerts that ended before `cutoff`: no reading still accepted can change them. */
export function prune(track: Track, cutoff: number): void {
  const list = track.transitions;
  if (list.length === 0 || list[0].at >= cutoff) return;
  let drop = 0;
  for (let i = 0; i < list.length && list[i].at < cutoff; i++) if (list[i].type === 'close') drop = i + 1;
  if (drop > 0) track.transitions = list.slice(drop);
}
