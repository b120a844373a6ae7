import type { SqlDb } from '../state/sqlDb.ts';
import { AlertKind as AlertKindSchema } from '../../../schemas/src/alert.ts';
import type { AlertFigures, AlertStats } from '../../../schemas/src/stats.ts';
import type { AlertKind, AlertState } from '../checks/types.ts';
import { toCsv } from '../evidence/csv.ts';
import { ALERT_KIND_LABELS, type Label, type Lang } from '../i18n/lang.ts';
import type { Site } from '../registry/registry.ts';

type Row = {
  site_id: string; kind: AlertKind; state: AlertState; withdrawn: number; level: number; recorded_at: number;
  acked_at: number | null; rectified_at: number | null; closed_at: number | null; due_at: number | null; missed_due: number;
};

class Tally {
  raised = 0; acked = 0; rectified = 0; resolved = 0; cleared = 0; withdrawn = 0; open = 0; overdue = 0;
  escalated = { 2: 0, 3: 0 };
  ackS: number[] = [];
  closeS: number[] = [];

  add(r: Row, now: number): void {
    if (r.withdrawn) { this.withdrawn++; return; }
    this.raised++;
    if (r.acked_at !== null) { this.acked++; this.ackS.push((r.acked_at - r.recorded_at) / 1000); }
    if (r.rectified_at !== null) this.rectified++;
    if (r.state === 'resolved') this.resolved++;
    if (r.state === 'cleared') this.cleared++;
    if (r.state === 'open' || r.state === 'acked' || r.state === 'rectified') this.open++;
    if ((r.state === 'resolved' || r.state === 'cleared') && r.closed_at !== null) this.closeS.push((r.closed_at - r.recorded_at) / 1000);
    // The same test as an alert's `overdue` flag (alertRecord.ts isOverdue).
    if (r.missed_due || ((r.state === 'open' || r.state === 'acked') && r.due_at !== null && now >= r.due_at)) this.overdue++;
    if (r.level >= 2) this.escalated[2]++;
    if (r.level >= 3) this.escalated[3]++;
  }

  figures(): AlertFigures {
    const { raised, acked, rectified, resolved, cleared, withdrawn, open, overdue } = this;
    return { raised, acked, rectified, resolved, cleared, withdrawn, open, overdue, escalated: { ...this.escalated }, medianAckS: median(this.ackS), medianCloseS: median(this.closeS) };
  }
}

function median(xs: number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * `GET /stats/alerts` (contract §6): the closed loop in figures for alerts opened in [from, to) at
 * the given sites — per site (every site asked for, zeros included), per kind (kinds that
 * occurred, in catalogue order) and in total. One indexed read of the period (alerts_by_opened).
 */
export function alertStats(db: SqlDb, sites: Site[], from: number | undefined, to: number, now: number): AlertStats {
  const total = new Tally();
  const bySite = new Map(sites.map((s) => [s.siteId, new Tally()]));
  const byKind = new Map<AlertKind, Tally>();
  if (sites.length) {
    const rows = db.prepare(`SELECT site_id, kind, state, withdrawn, level, recorded_at, acked_at, rectified_at, closed_at, due_at, missed_due
      FROM alerts WHERE opened_at >= ? AND opened_at < ? AND site_id IN (${sites.map(() => '?').join(',')})`)
      .all(from ?? 0, to, ...sites.map((s) => s.siteId)) as Row[];
    for (const r of rows) {
      total.add(r, now);
      bySite.get(r.site_id)!.add(r, now);
      let k = byKind.get(r.kind);
      if (!k) byKind.set(r.kind, (k = new Tally()));
      k.add(r, now);
    }
  }
  return {
    ...(from !== undefined ? { from: new Date(from).toISOString() } : {}), to: new Date(to).toISOString(),
    total: total.figures(),
    bySite: sites.map((s) => ({ siteId: s.siteId, name: s.name, regionCode: s.regionCode, ...bySite.get(s.siteId)!.figures() })),
    byKind: AlertKindSchema.options.filter((k) => byKind.has(k)).map((kind) => ({ kind, ...byKind.get(kind)!.figures() })),
  };
}

/** The figures' columns, in the order of contract §6, with their headers in both languages. */
const FIGURE_COLUMNS: readonly (readonly [Label, (f: AlertFigures) => string])[] = [
  [{ zh: '产生', en: 'raised' }, (f) => String(f.raised)],
  [{ zh: '已确认', en: 'acked' }, (f) => String(f.acked)],
  [{ zh: '已整改', en: 'rectified' }, (f) => String(f.rectified)],
  [{ zh: '已办结', en: 'resolved' }, (f) => String(f.resolved)],
  [{ zh: '已消除', en: 'cleared' }, (f) => String(f.cleared)],
  [{ zh: '已撤销', en: 'withdrawn' }, (f) => String(f.withdrawn)],
  [{ zh: '处理中', en: 'open' }, (f) => String(f.open)],
  [{ zh: '逾期', en: 'overdue' }, (f) => String(f.overdue)],
  [{ zh: '升至二级', en: 'escalated2' }, (f) => String(f.escalated[2])],
  [{ zh: '升至三级', en: 'escalated3' }, (f) => String(f.escalated[3])],
  [{ zh: '确认用时中位数（秒）', en: 'medianAckS' }, (f) => (f.medianAckS === null ? '' : String(f.medianAckS))],
  [{ zh: '闭环用时中位数（秒）', en: 'medianCloseS' }, (f) => (f.medianCloseS === null ? '' : String(f.medianCloseS))],
];

const GROUP: Readonly<Record<'total' | 'site' | 'kind', Label>> = {
  total: { zh: '合计', en: 'total' }, site: { zh: '工地', en: 'site' }, kind: { zh: '预警类别', en: 'kind' },
};

/**
 * The same figures as one CSV table (UTF-8 with BOM): a total row, a row per site, a row per kind.
 * Headers, the group and the kind's label in `lang` (Chinese by default, as every export); the
 * kind's code stays in a column of its own for programs.
 */
export function alertStatsCsv(s: AlertStats, lang: Lang): string {
  const row = (group: keyof typeof GROUP, site: readonly [string, string, string], kind: AlertKind | '', f: AlertFigures) =>
    [GROUP[group][lang], ...site, kind, kind ? ALERT_KIND_LABELS[kind][lang] : '', ...FIGURE_COLUMNS.map(([, cell]) => cell(f))];
  const header: Label[] = [
    { zh: '分组', en: 'group' }, { zh: '工地编号', en: 'siteId' }, { zh: '工地名称', en: 'siteName' }, { zh: '行政区划代码', en: 'regionCode' },
    { zh: '类别代码', en: 'kind' }, { zh: '类别', en: 'kindLabel' }, ...FIGURE_COLUMNS.map(([label]) => label),
  ];
  return toCsv([
    header.map((l) => l[lang]),
    row('total', ['', '', ''], '', s.total),
    ...s.bySite.map((x) => row('site', [x.siteId, x.name, x.regionCode], '', x)),
    ...s.byKind.map((x) => row('kind', ['', '', ''], x.kind, x)),
  ]);
}
