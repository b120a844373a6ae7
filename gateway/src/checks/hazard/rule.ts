/**
 * What a hazard rule is. A rule turns the samples of one series into an observation at one sample
 * (the aggregate, and which limit it is beyond); the engine owns everything else: the sample
 * store, late data, the open/raise/clear state machine, keys and signals. A new rule is a folder
 * under rules/ and one line in rules/registry.ts.
 */
import type { AlertKind } from '../types.ts';
import type { Samples, SlidingWindow } from './aggregates.ts';
import type { SiteCalendar } from '../../calendar/siteCalendar.ts';

/** 0: within limits; 1: beyond warning; 2: beyond critical. */
export type Level = 0 | 1 | 2;

/** Default clear level: 90 % of the warning limit (domain.md "Hazards", hysteresis). */
export const DEFAULT_CLEAR_RATIO = 0.9;

/** Defaults of one metric under one rule, as domain.md's tables give them. */
export interface LimitDefaults {
  warning?: number;
  critical?: number;
  clearRatio?: number;
  /** The standard the numbers come from, reported in the evidence. */
  source: string;
}

/** Limits in force for one device, metric and rule after site and device overrides. */
export interface Limits {
  warning?: number;
  critical?: number;
  clearRatio: number;
  source: string;
}

/** What a rule may keep between evaluations of one series (derived state: never snapshotted). */
export interface RuleMemo {
  window?: SlidingWindow;
}

export interface ObserveContext extends Samples {
  /** The sample being evaluated (physical index). */
  readonly j: number;
  /** Changes when entries before the newest change or move (series.ts): memos start over. */
  readonly version: number;
  /** This rule's memo for this series. */
  readonly memo: RuleMemo;
  readonly metric: string;
  readonly limits: Limits;
  readonly calendar: SiteCalendar;
  /** Registered `intervalS` in ms, or the interval learnt from the spacing up to j. */
  intervalMs(): number | undefined;
}

export interface Observation {
  level: Level;
  /** The aggregate is below the clear level: an open alert clears here. */
  below: boolean;
  /**
   * hazard.rate only: below the clear level that applies once the 3-consecutive-days condition
   * has held during the alert (90 % of that condition's level rather than of the rate limit).
   */
  belowHeld?: boolean;
  /** hazard.rate only: the 3-consecutive-days condition holds at this sample. */
  sustained?: boolean;
  /** The aggregate. */
  value: number;
  /** Samples the aggregate was taken over, and how many the window should hold. */
  samples?: number;
  expectedSamples?: number;
  /** Event time of the oldest sample in the window. */
  windowFrom?: number;
  /** Instant rules: the sample before (two consecutive samples decide). */
  previous?: number;
  previousAt?: number;
  /** hazard.rate: the change over each of the last three 24-h spans, newest first. */
  perDays?: number[];
  /** Why the rule decided without an aggregate (`period_end`: its noise period is over). */
  reason?: string;
}

export interface HazardRule {
  readonly id: string;
  readonly kind: Extract<AlertKind, 'hazard.threshold' | 'hazard.rate'>;
  /** What is aggregated, for messages: "day Leq over 20 min", "1-hour mean". */
  readonly label: string;
  /** Metric → default limits. The metrics this rule applies to. */
  readonly defaults: Readonly<Record<string, LimitDefaults>>;
  /** Event time before a sample that its evaluation reads (the window, the rate's 72 h). */
  readonly lookbackMs: number;
  /** Event time after a sample during which evaluations read it (for re-evaluating late data). */
  readonly reachMs: number;
  /**
   * The observation at sample j, or undefined when the data cannot decide (a window less than half
   * filled, a rate without 24 h of history): the alert state is then left as it is.
   */
  observe(ctx: ObserveContext): Observation | undefined;
  /** Rule id, aggregate, value, limits, window, samples: the numbers behind a decision. */
  evidence(obs: Observation, limits: Limits): Record<string, unknown>;
}

/** Clear level: clearRatio × the warning limit, or × the critical limit when there is none. */
export function clearLevel(limits: Limits): number {
  return limits.clearRatio * (limits.warning ?? limits.critical ?? Infinity);
}

/** "Beyond" a limit is strictly above it (GB 12523, GB 50497: 超过). */
export function levelOf(value: number, limits: Limits): Level {
  if (limits.critical !== undefined && value > limits.critical) return 2;
  if (limits.warning !== undefined && value > limits.warning) return 1;
  return 0;
}

/** Rounds for evidence and messages; decisions use the exact value. */
export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
