/**
 * The gateway's only source of calendar time: milliseconds since the epoch. `buildApp` takes one
 * (`deps.now`) and hands the same function to everything that stamps, compares or decides by
 * date: ingest (the `ts_in_future` horizon), checks (watermarks of live sites, liveness, month
 * close), reports (wage due dates), alert escalation, tokens and tickets, sinks (lag, dead
 * letters). Tests hand in a clock they set (test/support/clock.ts), so nothing in the suite
 * depends on the day it runs. Durations and timeouts are not calendar time: they use
 * `performance.now()` and timers, which a changed wall clock does not move.
 */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();
