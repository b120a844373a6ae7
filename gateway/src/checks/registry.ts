import type { CheckFactory } from './check.ts';

/** Every check the gateway runs, one line each (style.md §3: a new rule touches its folder and this list). */
export const CHECKS: CheckFactory[] = [
];
