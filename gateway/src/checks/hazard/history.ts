/**
 * The alert history of one (device, metric, rule), kept as the transitions that the data imply
 * (open, raise, sustain, close), each at the event time of the sample that caused it. The engine
 * folds observations into transitions; episodes (the alerts) are derived from them; signals are
 * the difference between the episodes before and after a reading.
 */
import type { AlertSignal, ClearSignal, RaiseSignal, Severity } from '../types.ts';
import type { Level, Observation } from './rule.ts';

export type Transition =
  | { at: number; type: 'open' | 'raise'; severity: 1 | 2; value: number; evidence: Record<string, unknown> }
  /** hazard.rate: the 3-consecutive-days condition held while the alert was open (clear level). */
  | { at: number; type: 'sustain' }
  | { at: number; type: 'close'; evidence: Record<string, unknown> };

export interface TrackState {
  open: boolean;
  severity: Level;
  openedAt: number;
  sustained: boolean;
}

export const SEVERITY = { 1: 'warning', 2: 'critical' } as const satisfies Record<1 | 2, Severity>;

export function closedState(): TrackState {
  return { open: false, severity: 0, openedAt: NaN, sustained: false };
}

export function copyState(from: TrackState, to: TrackState): void {
  to.open = from.open;
  to.severity = from.severity;
  to.openedAt = from.openedAt;
  to.sustained = from.sustained;
}

export function sameState(a: TrackState, b: TrackState): boolean {
  if (a.open !== b.open) return false;
  return !a.open || (a.severity === b.severity && a.openedAt === b.openedAt && a.sustained === b.sustained);
}

export function applyTransition(state: TrackState, t: Transition): void {
  switch (t.type) {
    case 'open':
      state.open = true;
      state.severity = t.severity;
      state.openedAt = t.at;
      state.sustained = false;
      break;
    case 'raise':
      state.severity = t.severity;
      break;
    case 'sustain':
      state.sustained = true;
      break;
    case 'close':
      state.open = false;
      state.severity = 0;
      state.openedAt = NaN;
      state.sustained = false;
      break;
  }
}

/** The state after the first `count` transitions. */
export function stateAfter(transitions: readonly Transition[], count: number): TrackState {
  const state = closedState();
  for (let i = 0; i < count; i++) applyTransition(state, transitions[i]);
  return state;
}

/**
 * One sample's observation applied to the state (domain.md "Hazards"): open at the first level
 * beyond a limit, severity rises in place, clear below the clear level. Pushes what changed.
 */
export function step(
  state: TrackState,
  obs: Observation,
  at: number,
  out: Transition[],
  evidence: (obs: Observation) => Record<string, unknown>,
): void {
  if (!state.open) {
    if (obs.level === 0) return;
    const t: Transition = { at, type: 'open', severity: obs.level, value: obs.value, evidence: evidence(obs) };
    out.push(t);
    applyTransition(state, t);
    if (obs.sustained) {
      out.push({ at, type: 'sustain' });
      state.sustained = true;
    }
    return;
  }
  if (obs.level > state.severity) {
    const t: Transition = { at, type: 'raise', severity: obs.level as 1 | 2, value: obs.value, evidence: evidence(obs) };
    out.push(t);
    applyTransition(state, t);
  }
  if (obs.sustained && !state.sustained) {
    out.push({ at, type: 'sustain' });
    state.sustained = true;
  }
  const below = state.sustained ? (obs.belowHeld ?? obs.below) : obs.below;
  if (obs.level === 0 && below) {
    const t: Transition = { at, type: 'close', evidence: evidence(obs) };
    out.push(t);
    applyTransition(state, t);
  }
}

/** Same decisions (time, kind, severity); evidence may differ in its numbers. */
export function sameTransitions(
  old: readonly Transition[],
  from: number,
  to: number,
  fresh: readonly Transition[],
): boolean {
  if (to - from !== fresh.length) return false;
  for (let i = 0; i < fresh.length; i++) {
    const a = old[from + i];
    const b = fresh[i];
    if (a.at !== b.at || a.type !== b.type) return false;
    if ((a.type === 'open' || a.type === 'raise') && a.severity !== (b as typeof a).severity) return false;
  }
  return true;
}

export interface EpisodeStep {
  at: number;
  severity: 1 | 2;
  value: number;
  evidence: Record<string, unknown>;
}

/** One alert: opened, possibly raised, possibly cleared. */
export interface Episode {
  openedAt: number;
  severity: 1 | 2;
  steps: EpisodeStep[];
  clearedAt: number | null;
  clearEvidence?: Record<string, unknown>;
}

export function episodesOf(transitions: readonly Transition[]): Episode[] {
  const out: Episode[] = [];
  let current: Episode | undefined;
  for (const t of transitions) {
    if (t.type === 'open') {
      current = { openedAt: t.at, severity: t.severity, steps: [t], clearedAt: null };
      out.push(current);
    } else if (current !== undefined && current.clearedAt === null) {
      if (t.type === 'raise') {
        current.steps.push(t);
        current.severity = t.severity;
      } else if (t.type === 'close') {
        current.clearedAt = t.at;
        current.clearEvidence = t.evidence;
      }
    }
  }
  return out;
}

function sameEpisode(a: Episode, b: Episode): boolean {
  return a.openedAt === b.openedAt && a.severity === b.severity && a.clearedAt === b.clearedAt;
}

/** Who the signals are about, and how to word them. */
export interface SignalTarget {
  kind: 'hazard.threshold' | 'hazard.rate';
  siteId: string;
  key: string;
  subject: { deviceId: string; metric: string };
  message(step: EpisodeStep): string;
}

/**
 * Signals that take the alert store from `before` to `after`. In time order nothing but appends
 * happen: new alerts, severity rising in place, clears. When late data rewrite the past, the
 * alerts from the first difference on are withdrawn (`retracts`) and raised again as they now
 * stand, so the store ends with exactly the alerts the data imply, whatever the arrival order.
 */
export function signalsBetween(target: SignalTarget, before: readonly Episode[], after: readonly Episode[]): AlertSignal[] {
  let d = 0;
  while (d < before.length && d < after.length && sameEpisode(before[d], after[d])) d++;
  if (d === before.length && d === after.length) return [];
  const out: AlertSignal[] = [];
  if (d === before.length) {
    for (let i = d; i < after.length; i++) emitEpisode(target, after[i], 0, out);
    return out;
  }
  const was = before[d];
  const now = after[d];
  if (
    d === before.length - 1 &&
    was.clearedAt === null &&
    now !== undefined &&
    now.openedAt === was.openedAt &&
    now.severity >= was.severity
  ) {
    emitEpisode(target, now, was.severity, out);
    for (let i = d + 1; i < after.length; i++) emitEpisode(target, after[i], 0, out);
    return out;
  }
  for (let i = before.length - 1; i >= d; i--) out.push(retraction(target, before[i]));
  for (let i = d; i < after.length; i++) emitEpisode(target, after[i], 0, out);
  return out;
}

/** Raises for the steps above `known` severity, then the clear if the episode has ended. */
function emitEpisode(target: SignalTarget, episode: Episode, known: Level, out: AlertSignal[]): void {
  for (const s of episode.steps) {
    if (s.severity <= known) continue;
    const raise: RaiseSignal = {
      type: 'raise',
      kind: target.kind,
      siteId: target.siteId,
      subject: { ...target.subject },
      key: target.key,
      severity: SEVERITY[s.severity],
      openedAt: episode.openedAt,
      message: target.message(s),
      evidence: s.evidence,
    };
    out.push(raise);
  }
  if (episode.clearedAt !== null) {
    const clear: ClearSignal = {
      type: 'clear',
      kind: target.kind,
      siteId: target.siteId,
      key: target.key,
      at: episode.clearedAt,
      ...(episode.clearEvidence !== undefined ? { evidence: episode.clearEvidence } : {}),
    };
    out.push(clear);
  }
}

function retraction(target: SignalTarget, episode: Episode): ClearSignal {
  return {
    type: 'clear',
    kind: target.kind,
    siteId: target.siteId,
    key: target.key,
    at: episode.openedAt,
    retracts: episode.openedAt,
    evidence: { reason: 'retracted', detail: 'late or out-of-order readings changed this window' },
  };
}
