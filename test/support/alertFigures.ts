import { expect } from 'vitest';
import type { TestGateway } from './gateway.ts';

type Item = { siteId: string; kind: string; state: string; level: number; recordedAt: string; overdue?: boolean; withdrawn?: boolean; history: { at: string; event: string }[] };

/** Every alert `GET /alerts` lists for a query, all pages. */
export async function listAll(g: TestGateway, query: string, token?: string): Promise<Item[]> {
  const out: Item[] = [];
  let next: string | undefined;
  do {
    const r = await g.api('GET', `/alerts?limit=1000&${query}${next ? `&cursor=${encodeURIComponent(next)}` : ''}`, undefined, token ? { token } : {});
    if (r.status !== 200) throw new Error(`GET /alerts: ${r.status} ${r.text}`);
    out.push(...r.json.items);
    next = r.json.next;
  } while (next);
  return out;
}

const median = (xs: number[]) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const firstAt = (a: Item, events: string[]) => a.history.find((h) => events.includes(h.event))?.at;

/** The figures of contract §6, counted from what `GET /alerts` lists (the independent side of the comparison). */
export function figuresOf(items: Item[]) {
  const kept = items.filter((a) => !a.withdrawn);
  const secs = (a: Item, at: string | undefined) => (at ? (Date.parse(at) - Date.parse(a.recordedAt)) / 1000 : undefined);
  const has = (a: Item, e: string) => a.history.some((h) => h.event === e);
  return {
    raised: kept.length,
    acked: kept.filter((a) => has(a, 'acked') || has(a, 'rectified')).length,
    rectified: kept.filter((a) => has(a, 'rectified')).length,
    resolved: kept.filter((a) => a.state === 'resolved').length,
    cleared: kept.filter((a) => a.state === 'cleared').length,
    withdrawn: items.length - kept.length,
    open: kept.filter((a) => ['open', 'acked', 'rectified'].includes(a.state)).length,
    overdue: kept.filter((a) => a.overdue).length,
    escalated: { 2: kept.filter((a) => a.level >= 2).length, 3: kept.filter((a) => a.level >= 3).length },
    medianAckS: median(kept.map((a) => secs(a, firstAt(a, ['acked', 'rectified']))).filter((x): x is number => x !== undefined)),
    medianCloseS: median(kept.filter((a) => a.state === 'resolved' || a.state === 'cleared').map((a) => secs(a, firstAt(a, ['resolved', 'cleared', 'withdrawn']))).filter((x): x is number => x !== undefined)),
  };
}

/** `/stats/alerts` (total, each site, each kind) equals the figures counted from `GET /alerts` in the same scope. */
export async function expectStatsMatchList(g: TestGateway, token?: string, statsQuery = ''): Promise<any> {
  const stats = await g.api('GET', `/stats/alerts?${statsQuery}`, undefined, token ? { token } : {});
  expect(stats.status, stats.text).toBe(200);
  const items = await listAll(g, 'includeWithdrawn=true', token);
  const { from, to } = stats.json;
  const inPeriod = items.filter((a: any) => (!from || a.openedAt >= from) && a.openedAt < to);
  expect(stats.json.total).toEqual(figuresOf(inPeriod));
  for (const s of stats.json.bySite) {
    const { siteId, name: _n, regionCode: _r, ...f } = s;
    expect(f, siteId).toEqual(figuresOf(inPeriod.filter((a) => a.siteId === siteId)));
  }
  expect(stats.json.byKind.map((k: any) => k.kind).sort()).toEqual([...new Set(inPeriod.map((a) => a.kind))].sort());
  for (const k of stats.json.byKind) {
    const { kind, ...f } = k;
    expect(f, kind).toEqual(figuresOf(inPeriod.filter((a) => a.kind === kind)));
  }
  return stats.json;
}
