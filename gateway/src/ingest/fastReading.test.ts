import { describe, expect, it } from 'vitest';
import { Reading } from '../../../schemas/src/messages.ts';
import { fastReading } from './validate.ts';

/**
 * The hand-written reading check is only a shortcut: whatever it accepts, zod must accept with
 * equal data, and the usual readings must take it. Everything it declines goes to zod, whose
 * verdicts the decoder cases (cases/) pin down.
 */
function agreesWithZod(input: unknown): boolean {
  const fast = fastReading(input);
  if (fast === null) return false;
  const z = Reading.safeParse(input);
  expect(z.success, `zod refuses what the fast path accepts: ${JSON.stringify(input)}`).toBe(true);
  expect(fast).toEqual(z.data);
  expect(JSON.stringify(fast)).toBe(JSON.stringify(z.data)); // same key order, so the same stored body
  return true;
}

let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const pick = <T,>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;

const IDS: unknown[] = ['', 'a', 'D3-99812', 'x'.repeat(128), 'x'.repeat(129), 'é'.repeat(128), 7, null, undefined, ['a'], {}];
const TSS: unknown[] = [0, -0, 1, 1793577600000, 8.64e15, 8.64e15 + 1, -1, 1.5, Number.MAX_SAFE_INTEGER, 2 ** 53, NaN, Infinity, -Infinity,
  '2026-11-02T07:58:12+08:00', '2026-11-02T07:58:12', '1793577600000', null, true, undefined, {}];
const NAMES = ['pm10', 'pm2_5', 'noise_dba', 'A', 'a'.repeat(64), 'a'.repeat(65), '_x', '1abc', 'no-dash', 'sp ace', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '', 'é'];
const VALUES: unknown[] = [0, -0, 1, 132.5, -3.25, 1e308, Number.MIN_VALUE, NaN, Infinity, '1', null, true, [], {}, undefined];

function randomMetrics(): unknown {
  const r = rand();
  if (r < 0.05) return [];
  if (r < 0.08) return null;
  if (r < 0.1) return 'pm10';
  const m: Record<string, unknown> = {};
  const n = Math.floor(rand() * 5);
  for (let i = 0; i < n; i++) m[pick(NAMES)] = rand() < 0.8 ? Math.round(rand() * 10000) / 10 : pick(VALUES);
  return m;
}

describe('fastReading', () => {
  it('takes the everyday reading and agrees with zod on it', () => {
    const r = { id: 'D3-99812', ts: 1793577600000, metrics: { pm10: 132.5, pm2_5: 61.0, noise_dba: 72.1 } };
    expect(fastReading(r)).toBe(r);
    agreesWithZod(r);
    const parsed = JSON.parse(JSON.stringify(r));
    expect(fastReading(parsed)).not.toBeNull();
  });

  it('declines what it does not handle (zod decides)', () => {
    const ok = { id: 'a', ts: 1, metrics: { pm10: 1 } };
    for (const bad of [
      { ...ok, ts: '2026-11-02T07:58:12+08:00' }, { ...ok, extra: 1 }, { id: 'a', ts: 1 }, { ...ok, metrics: {} }, { ...ok, metrics: [] },
      { ...ok, id: '' }, { ...ok, ts: -1 }, { ...ok, ts: 1.5 }, { ...ok, metrics: { '1x': 1 } }, { ...ok, metrics: { pm10: '1' } },
      JSON.parse('{"id":"a","ts":1,"metrics":{"__proto__":1,"pm10":2}}'), JSON.parse('{"id":"a","ts":1,"__proto__":{}}'),
      Object.assign(Object.create(null), ok), [ok], null, 'x', 1,
    ]) {
      expect(fastReading(bad), JSON.stringify(bad)).toBeNull();
    }
  });

  it('never accepts what zod refuses, nor with other data (random and boundary inputs)', () => {
    let taken = 0;
    for (let i = 0; i < 20_000; i++) {
      const v: Record<string, unknown> = {};
      if (rand() < 0.97) v.id = rand() < 0.7 ? `m-${i}` : pick(IDS);
      if (rand() < 0.97) v.ts = rand() < 0.7 ? 1793577600000 + i : pick(TSS);
      if (rand() < 0.97) v.metrics = randomMetrics();
      if (rand() < 0.03) v[pick(['extra', 'batch', 'ID', '__proto__'])] = 1;
      if (agreesWithZod(v)) taken++;
      agreesWithZod(JSON.parse(JSON.stringify(v))); // as the decoder sees it
    }
    expect(taken).toBeGreaterThan(1000); // the comparison is not vacuous
  });
});
