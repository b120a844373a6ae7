import fs from 'node:fs';
import path from 'node:path';
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

/** libfaketime's preload library (Debian's `libfaketime` package, pulled in by `faketime`), thread-safe build: node runs threads. */
function libfaketime(): string {
  for (const dir of ['/usr/lib', ...fs.readdirSync('/usr/lib').map((d) => path.join('/usr/lib', d))]) {
    const lib = path.join(dir, 'faketime', 'libfaketimeMT.so.1');
    if (fs.existsSync(lib)) return lib;
  }
  throw new Error('libfaketimeMT.so.1 not found: apt-get install faketime (scripts/test-all.sh does)');
}

/**
 * The calendar clock of a gateway run as its own process (`spawnGateway(env, { clock })`), for
 * what a TestClock does in process: libfaketime preloaded into the child reads a timestamp file
 * that `set` rewrites. The file holds an absolute "YYYY-MM-DD hh:mm:ss", which libfaketime keeps
 * still (a stopped wall clock) until the next rewrite, so the child's Date.now() is exactly the
 * instant the test set, however slow the machine. (The "start at" form "@…" would not do: it adds
 * the time since the process started.) Only the wall clock is faked:
 * FAKETIME_DONT_FAKE_MONOTONIC leaves the monotonic clock real, so the child's timers and event
 * loop run in real time; FAKETIME_NO_CACHE makes every read see the file (else up to 10 s late).
 * The gateway runs its production code unchanged: only libc's answer to "what time is it" moves.
 */
export class ChildClock {
  readonly file: string;
  private t: number;

  constructor(at: string | number, dir: string) {
    this.file = path.join(dir, 'faketime.rc');
    this.t = 0;
    this.set(at);
  }

  get now(): number {
    return this.t;
  }

  /** Whole seconds (the file's format); written whole (rename), so the child never reads half a line. */
  set(at: string | number): void {
    const t = typeof at === 'number' ? at : Date.parse(at);
    if (!Number.isFinite(t) || t % 1000 !== 0) throw new Error(`ChildClock: not a whole second: ${at}`);
    this.t = t;
    fs.writeFileSync(`${this.file}.tmp`, new Date(t).toISOString().slice(0, 19).replace('T', ' ') + '\n');
    fs.renameSync(`${this.file}.tmp`, this.file);
  }

  advance(ms: number): void {
    this.set(this.t + ms);
  }

  /** The child's environment: the preload, the file, and TZ=UTC, the zone the file's time is read in. */
  env(): Record<string, string> {
    return {
      LD_PRELOAD: libfaketime(), FAKETIME_TIMESTAMP_FILE: this.file, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1', TZ: 'UTC',
    };
  }
}
