import type { Clock } from '../../gateway/src/clock/clock.ts';

/**
 * A calendar clock a test sets (gateway/src/clock/clock.ts): hand `clock.now` to `buildApp` (or a
 * check's context) and move it with `set`/`advance`, so a test that depends on "now" says which
 * now, and passes on any date it runs (`.ci/run` runs the suite again 400 days ahead).
 */
export class TestClock {
  private t: number;
  readonly now: Clock = () => this.t;

  constructor(at: string | number) {
    this.t = TestClock.ms(at);
  }

  set(at: string | number): void {
    this.t = TestClock.ms(at);
  }

  advance(ms: number): void {
    this.t += ms;
  }

  private static ms(at: string | number): number {
    const t = typeof at === 'number' ? at : Date.parse(at);
    if (!Number.isFinite(t)) throw new Error(`TestClock: not a time: ${at}`);
    return t;
  }
}
