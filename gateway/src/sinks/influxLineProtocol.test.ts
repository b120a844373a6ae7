import { describe, expect, it } from 'vitest';
import type { StoredRecord } from '../ledger/types.ts';
import { toLines, toLinesViaPoints } from './influxLineProtocol.ts';

const reading = (seq: number, metrics: Record<string, unknown>, ids: { siteId?: string; deviceId?: string } = {}): StoredRecord => ({
  seq, siteId: ids.siteId ?? 'S1', deviceId: ids.deviceId ?? 'D-1', kind: 'reading', msgId: `m${seq}`, dedupeKey: `D-1/m${seq}`,
  ts: 1_793_577_600_000 + seq + 0.7, receivedAt: 0, body: { metrics },
});

describe('line protocol of readings (the shortcut past Point objects)', () => {
  it('writes exactly what the general path through contract §4 points writes', () => {
    const records: StoredRecord[] = [
      reading(1, { pm10: 132.5, pm2_5: 61, noise_dba: 72.1 }),
      reading(2, { big: 1e21, bigger: 1.5e300, tiny: 1e-7, negZero: -0, neg: -3, frac: -0.25 }),
      reading(3, { nan: NaN, inf: Infinity, ok: 1 }),
      reading(4, { nan: NaN }), // no field left: no line
      reading(5, { a: 1 }, { siteId: 'S 1,x=y', deviceId: 'D\\1\nz' }), // escapes (ids are validated; the sink does not rely on it)
      reading(6, { a: 2 }, { deviceId: '' }),
    ];
    expect(toLines(records, () => 'sensor')).toEqual(toLinesViaPoints(records, () => 'sensor'));
    expect(toLines([records[1]!], () => 'sensor')).toEqual([
      'reading,device=D-1,site=S1 big=1e+21,bigger=1.5e+300,tiny=1e-7,negZero=0.0,neg=-3.0,frac=-0.25 1793577600002',
    ]);
  });
});
