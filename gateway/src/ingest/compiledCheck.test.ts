import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Checkin, Reading } from '../../../schemas/src/messages.ts';
import { mulberry32 } from '../../../schemas/src/random.ts';
import { compileAccept } from './compiledCheck.ts';

/**
 * The compiled check against zod itself: on valid readings and on every kind of near miss, its
 * yes must be zod's yes with the value unchanged (id, ts and the metrics' stored JSON), and it
 * should say yes to nearly all valid readings (or it saves nothing).
 */
describe('compiledCheck: Reading compiled from its zod schema', () => {
  const accept = compileAccept(Reading)!;
  const rnd = mulberry32(1107);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const names = ['pm2_5', 'pm10', 'noise_dba', 'temperature_c', 'crane_tilt_deg', 'x', 'A'.repeat(64), 'custom_1'];
  const validMetrics = () => {
    const m: Record<string, number> = {};
    const n = 1 + Math.floor(rnd() * 6);
    for (let i = 0; i < n; i++) m[pick(names)] = pick([0, -0, 1, -3.5, 1e308, -1e-300, Math.round(rnd() * 10_000) / 100]);
    return m;
  };
  const validTs = () => pick<unknown>([0, 1_788_192_000_000, 8.64e15, '2026-09-01T00:00:00+08:00', '2026-09-01T00:00:00.123Z', '2026-09-01 00:00:00z']);
  const valid = (): Record<string, unknown> => ({ id: pick(['a', 'ENV-HZ-001-001463', 'x'.repeat(128), '中文 id']), ts: validTs(), metrics: validMetrics() });

  /** One change that may or may not make the reading invalid. */
  const mutations: ((r: Record<string, unknown>) => unknown)[] = [
    (r) => { delete r[pick(['id', 'ts', 'metrics'])]; return r; },
    (r) => ({ ...r, extra: 1 }),
    (r) => ({ ...r, id: pick<unknown>(['', 'x'.repeat(129), 5, null, ['a']]) }),
    (r) => ({ ...r, ts: pick<unknown>([-1, 1.5, 8.64e15 + 2, Number.MAX_SAFE_INTEGER + 2, NaN, Infinity, '2026-09-01T00:00:00', '2026-09-01', true, null, {}]) }),
    (r) => ({ ...r, metrics: pick<unknown>([{}, [], null, 'pm10', [1, 2], Object.create(null), new (class M {})()]) }),
    (r) => ({ ...r, metrics: { ...(r.metrics as object), [pick(['1abc', '_x', 'a-b', 'a'.repeat(65), '', 'é', '123', 'constructor', 'toString'])]: 1 } }),
    (r) => ({ ...r, metrics: { ...(r.metrics as object), [pick(names)]: pick<unknown>(['1', null, NaN, Infinity, -Infinity, true, [1], {}]) } }),
    (r) => JSON.parse(JSON.stringify(r).replace('"metrics":{', '"metrics":{"__proto__":1,')),
    (r) => JSON.parse(JSON.stringify(r).replace('{"id"', '{"__proto__":{"a":1},"id"')),
    (r) => Object.assign(Object.create({ inherited: 1 }), r),
    (r) => pick<unknown>([null, 'reading', 42, [r]]),
    (r) => r,
  ];

  it('compiles today\'s Reading, and declines a schema with parts it does not know', () => {
    expect(accept).toBeTypeOf('function');
    expect(compileAccept(Checkin)).toBeNull(); // optional fields
    expect(compileAccept(z.string().transform((s) => s.length))).toBeNull();
    expect(compileAccept(z.strictObject({ a: z.string().email() }))).toBeNull();
    expect(compileAccept(z.object({ a: z.number() }))).toBeNull(); // not strict: unknown keys are stripped
    expect(compileAccept(z.number().refine((n) => n > 0, { when: () => true }))).toBeNull();
  });

  it('says yes only where zod does, with the value unchanged', () => {
    let zodYes = 0, bothYes = 0, validYes = 0, validN = 0;
    for (let i = 0; i < 20_000; i++) {
      const base = valid();
      const isPlain = i % 3 === 0;
      const v = isPlain ? base : pick(mutations)(JSON.parse(JSON.stringify(base)) as Record<string, unknown>);
      const fast = accept(v);
      const z = Reading.safeParse(v);
      if (z.success) zodYes++;
      if (isPlain) { validN++; if (fast) validYes++; }
      if (!fast) continue;
      bothYes++;
      expect(z.success, JSON.stringify(v)).toBe(true);
      const r = v as Record<string, unknown>;
      expect(z.data!.id).toBe(r.id);
      expect(z.data!.ts).toBe(r.ts);
      expect(JSON.stringify(z.data!.metrics)).toBe(JSON.stringify(r.metrics));
    }
    expect(validYes).toBe(validN); // every plain valid reading takes the fast yes
    expect(bothYes).toBeGreaterThan(zodYes * 0.8);
  });

  it('a string field\'s global pattern is tested from the start each time', () => {
    const g = compileAccept(z.strictObject({ a: z.string().regex(/^a+$/g) }))!;
    expect(g({ a: 'aaa' })).toBe(true);
    expect(g({ a: 'aaa' })).toBe(true);
  });
});
