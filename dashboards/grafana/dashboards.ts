/**
 * The Grafana dashboards, written once as panels of queries in no query language, rendered as
 * Flux (InfluxDB 2.x/3.x, `sitegate.json`) and InfluxQL (InfluxDB 1.x — and 2.x through its
 * virtual DBRP mapping — `sitegate-influxql.json`), plus a region overview in InfluxQL. The
 * generated files sit in `dashboards/`; `npm run dashboards` rewrites them and a test fails when
 * they drift (style.md §1: one source of truth, derived files checked).
 *
 * Thresholds are not typed anywhere here: each panel's threshold lines and its description come
 * from the hazard rules' defaults (`gateway/src/checks/hazard/rules/`, which cite domain.md and
 * their standards). A site that overrides a limit in its settings still sees the default line:
 * InfluxDB holds readings, not settings.
 *
 * Measurements, tags and fields are contract §4's as `gateway/src/sinks/points.ts` writes them.
 * §4 has no region tag, so the region overview picks its sites with a multi-value `sites`
 * variable (the sites of a region are the gateway's registry, not InfluxDB's).
 */
import { hazardRules } from '../../gateway/src/checks/hazard/rules/registry.ts';
import type { HazardRule } from '../../gateway/src/checks/hazard/rule.ts';

export type Measurement = 'reading' | 'checkin' | 'alert' | 'device_status';
export type Language = 'flux' | 'influxql';

/** One series a panel draws: an aggregate of one field of one measurement at the selected site(s). */
export interface SeriesSpec {
  refId: string;
  measurement: Measurement;
  field: string;
  /** Aggregate per window; `last` with `byTags` and no window gives one row per tag value (tables). */
  agg: 'mean' | 'max' | 'count' | 'last';
  /** Keep only values of `field` equal to one of these (strings) or at least `atLeast` (numbers). */
  values?: readonly string[];
  atLeast?: number;
  /** Window: Grafana's automatic interval, a fixed one, or none (one value per group over the range). */
  every: 'auto' | '1h' | '1d' | 'none';
  /** Tags to split by (a line or a row per value). */
  byTags?: readonly string[];
  /** Count the distinct values of this tag per window instead of the points (workers present a day). */
  distinctTag?: string;
  /** Legend / column name. */
  alias: string;
}

export interface PanelSpec {
  title: string;
  type: 'timeseries' | 'table' | 'barchart' | 'stat' | 'state-timeline';
  unit?: string;
  /** Panel time range relative to now (Grafana `timeFrom`), e.g. alerts still open over 90 days. */
  timeFrom?: string;
  series: readonly SeriesSpec[];
  /** Raw table of the latest points (alerts list): fields shown, newest first; Flux pivots them. */
  rawFields?: readonly string[];
  w: number;
  h: number;
}

const OPEN_STATES = ['open', 'acked', 'rectified'] as const;

/** The warning and critical limits of a metric's first hazard.threshold rule, and every rule's limits for the description. */
function limitsOf(metric: string): { line?: { warning?: number; critical?: number }; notes: string[] } {
  const rules = hazardRules.filter((r: HazardRule) => r.defaults[metric] !== undefined);
  const threshold = rules.find((r) => r.kind === 'hazard.threshold');
  const d = threshold?.defaults[metric];
  const notes = rules.map((r) => {
    const x = r.defaults[metric]!;
    const parts = [x.warning !== undefined ? `warning ${x.warning}` : undefined, x.critical !== undefined ? `critical ${x.critical}` : undefined].filter(Boolean);
    return `${metric} — ${r.kind === 'hazard.rate' ? 'rate, ' : ''}${r.label}: ${parts.join(', ')} (${x.source})`;
  });
  return { line: d ? { warning: d.warning, critical: d.critical } : undefined, notes };
}

/** Readings of the site, one panel per group of metrics; each metric its own query (refId = metric). */
function readingPanel(title: string, unit: string, metrics: readonly string[], w = 12): PanelSpec {
  return {
    title, type: 'timeseries', unit, w, h: 8,
    series: metrics.map((m) => ({ refId: m, measurement: 'reading', field: m, agg: 'mean', every: 'auto', byTags: ['device'], alias: m })),
  };
}

const checkinVerdicts = ['verified', 'face_mismatch', 'no_face', 'unverified'] as const;

/** The site dashboard: readings with their limits, attendance, alerts, devices. */
export const SITE_PANELS: readonly PanelSpec[] = [
  readingPanel('扬尘 Dust (µg/m³)', 'conμgm3', ['pm10', 'pm2_5', 'tsp']),
  readingPanel('噪声 Noise dB(A)', 'dB', ['noise_dba']),
  readingPanel('塔吊 / 升降机 Crane / hoist (% of rated)', 'percent', ['crane_load_pct', 'crane_moment_pct', 'hoist_load_pct']),
  readingPanel('基坑 Foundation pit (mm, cumulative)', 'lengthmm', ['pit_displacement_mm', 'pit_settlement_mm']),
  readingPanel('风速 Wind (m/s)', 'velocityms', ['wind_speed_ms']),
  readingPanel('可燃气体 Combustible gas (% LEL)', 'percent', ['gas_lel_pct']),
  {
    title: '打卡 Check-ins per hour by face verdict', type: 'timeseries', unit: 'short', w: 12, h: 8,
    series: checkinVerdicts.map((v) => ({ refId: v, measurement: 'checkin', field: 'verdict', agg: 'count', values: [v], every: '1h', alias: v })),
  },
  {
    title: '出勤 Workers present per day', type: 'barchart', unit: 'short', w: 12, h: 8,
    series: [{ refId: 'workers', measurement: 'checkin', field: 'id', agg: 'count', distinctTag: 'worker', every: '1d', alias: 'workers' }],
  },
  {
    title: '预警 Alerts raised per day by kind', type: 'timeseries', unit: 'short', w: 12, h: 8,
    series: [{ refId: 'raised', measurement: 'alert', field: 'id', agg: 'count', every: '1d', byTags: ['kind'], alias: 'raised' }],
  },
  {
    title: '未闭环预警 Alerts not closed, by severity', type: 'stat', unit: 'short', w: 6, h: 8, timeFrom: '90d',
    series: [{ refId: 'open', measurement: 'alert', field: 'state', agg: 'count', values: OPEN_STATES, every: 'none', byTags: ['severity'], alias: 'open' }],
  },
  {
    title: '已升级 Alerts at level 2 or 3', type: 'stat', unit: 'short', w: 6, h: 8, timeFrom: '90d',
    series: [{ refId: 'escalated', measurement: 'alert', field: 'level', agg: 'count', atLeast: 2, every: 'none', alias: 'escalated' }],
  },
  {
    title: '预警列表 Alerts (latest state of each)', type: 'table', w: 24, h: 10, timeFrom: '90d',
    series: [{ refId: 'alerts', measurement: 'alert', field: 'state', agg: 'last', every: 'none', alias: 'alerts' }],
    rawFields: ['level', 'state', 'id'],
  },
  {
    title: '设备在线 Devices online', type: 'state-timeline', w: 24, h: 8,
    series: [{ refId: 'online', measurement: 'device_status', field: 'online', agg: 'last', every: 'auto', byTags: ['device'], alias: 'online' }],
  },
];

/** The region overview: one row per site for each figure. */
export const REGION_PANELS: readonly PanelSpec[] = [
  {
    title: '各工地未闭环预警 Alerts not closed per site and severity', type: 'table', w: 12, h: 9, timeFrom: '90d',
    series: [{ refId: 'open', measurement: 'alert', field: 'state', agg: 'count', values: OPEN_STATES, every: 'none', byTags: ['site', 'severity'], alias: 'open' }],
  },
  {
    title: '各工地已升级预警 Alerts at level 2 or 3 per site', type: 'table', w: 12, h: 9, timeFrom: '90d',
    series: [{ refId: 'escalated', measurement: 'alert', field: 'level', agg: 'count', atLeast: 2, every: 'none', byTags: ['site'], alias: 'escalated' }],
  },
  {
    title: '各工地预警数 Alerts raised per day per site', type: 'timeseries', unit: 'short', w: 24, h: 8,
    series: [{ refId: 'raised', measurement: 'alert', field: 'id', agg: 'count', every: '1d', byTags: ['site'], alias: 'raised' }],
  },
  {
    title: '各工地出勤人数 Workers present per day per site', type: 'timeseries', unit: 'short', w: 12, h: 8,
    series: [{ refId: 'workers', measurement: 'checkin', field: 'id', agg: 'count', distinctTag: 'worker', every: '1d', byTags: ['site'], alias: 'workers' }],
  },
  {
    title: '各工地疑似代打卡 Face mismatches per day per site', type: 'timeseries', unit: 'short', w: 12, h: 8,
    series: [{ refId: 'face_mismatch', measurement: 'checkin', field: 'verdict', agg: 'count', values: ['face_mismatch'], every: '1d', byTags: ['site'], alias: 'face_mismatch' }],
  },
  {
    title: '各工地扬尘最高 PM10 per site (max of the device means)', type: 'timeseries', unit: 'conμgm3', w: 12, h: 8,
    series: [{ refId: 'pm10', measurement: 'reading', field: 'pm10', agg: 'max', every: 'auto', byTags: ['site'], alias: 'pm10' }],
  },
  {
    title: '各工地噪声最高 Noise per site', type: 'timeseries', unit: 'dB', w: 12, h: 8,
    series: [{ refId: 'noise_dba', measurement: 'reading', field: 'noise_dba', agg: 'max', every: 'auto', byTags: ['site'], alias: 'noise_dba' }],
  },
  {
    title: '各工地设备在线 Devices online per site (latest status)', type: 'table', w: 24, h: 8, timeFrom: '7d',
    series: [{ refId: 'online', measurement: 'device_status', field: 'online', agg: 'last', every: 'none', byTags: ['site', 'device'], alias: 'online' }],
  },
];

/** How a dashboard selects its site(s): one site, or several (a region's). */
type SiteSelector = { variable: string; multi: boolean };

const interval = (every: SeriesSpec['every'], lang: Language): string | undefined =>
  every === 'none' ? undefined : every === 'auto' ? (lang === 'flux' ? 'v.windowPeriod' : '$__interval') : every;

/** InfluxQL for a series. Day windows follow the `tz` variable (site time, not UTC). */
export function influxql(s: SeriesSpec, sites: SiteSelector, rawFields?: readonly string[]): string {
  const q = (id: string) => `"${id}"`;
  const siteFilter = `${q('site')} =~ /^${'${' + sites.variable + ':regex}'}$/`;
  const valueFilter = s.values
    ? ` AND (${s.values.map((v) => `${q(s.field)} = '${v}'`).join(' OR ')})`
    : s.atLeast !== undefined ? ` AND ${q(s.field)} >= ${s.atLeast}` : '';
  const where = `WHERE $timeFilter AND ${siteFilter}${valueFilter}`;
  const tz = s.every === '1d' ? ` tz('$tz')` : '';
  if (rawFields) {
    return `SELECT ${rawFields.map(q).join(', ')} FROM ${q(s.measurement)} ${where} GROUP BY ${q('kind')}, ${q('severity')}${sites.multi ? `, ${q('site')}` : ''} ORDER BY time DESC LIMIT 200`;
  }
  const every = interval(s.every, 'influxql');
  const groups = [...(every ? [`time(${every})`] : []), ...(s.byTags ?? []).map(q)];
  const groupBy = groups.length ? ` GROUP BY ${groups.join(', ')}` : '';
  const fill = every ? ' fill(none)' : '';
  if (s.distinctTag) {
    // A tag has no distinct(): count one row per tag value and window, then count those rows.
    const inner = `SELECT ${s.agg}(${q(s.field)}) AS ${q('n')} FROM ${q(s.measurement)} ${where} GROUP BY ${[...(every ? [`time(${every})`] : []), ...(s.byTags ?? []).map(q), q(s.distinctTag)].join(', ')}${fill}${tz}`;
    return `SELECT count(${q('n')}) AS ${q(s.alias)} FROM (${inner})${groupBy}${fill}${tz}`;
  }
  return `SELECT ${s.agg}(${q(s.field)}) AS ${q(s.alias)} FROM ${q(s.measurement)} ${where}${groupBy}${fill}${tz}`;
}

/** Flux for a series (InfluxDB 2.x / 3.x). */
export function flux(s: SeriesSpec, sites: SiteSelector, rawFields?: readonly string[]): string {
  const siteFilter = sites.multi ? `contains(value: r.site, set: \${${sites.variable}:json})` : `r.site == "\${${sites.variable}}"`;
  const lines = [
    ...(s.every === '1d' ? ['import "timezone"', 'option location = timezone.location(name: "${tz}")'] : []),
    'from(bucket: v.defaultBucket)',
    '  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)',
  ];
  if (rawFields) {
    lines.push(
      `  |> filter(fn: (r) => r._measurement == "${s.measurement}" and ${siteFilter})`,
      `  |> filter(fn: (r) => ${rawFields.map((f) => `r._field == "${f}"`).join(' or ')})`,
      '  |> pivot(rowKey: ["_time", "site", "kind", "severity"], columnKey: ["_field"], valueColumn: "_value")',
      '  |> group()',
      '  |> sort(columns: ["_time"], desc: true)',
      '  |> limit(n: 200)',
    );
    return lines.join('\n');
  }
  lines.push(`  |> filter(fn: (r) => r._measurement == "${s.measurement}" and ${siteFilter} and r._field == "${s.field}")`);
  if (s.values) lines.push(`  |> filter(fn: (r) => ${s.values.map((v) => `r._value == "${v}"`).join(' or ')})`);
  if (s.atLeast !== undefined) lines.push(`  |> filter(fn: (r) => r._value >= ${s.atLeast})`);
  const every = interval(s.every, 'flux');
  const tags = s.byTags ?? [];
  if (s.distinctTag) {
    lines.push(`  |> group(columns: ${JSON.stringify([...tags, s.distinctTag])})`);
    lines.push(`  |> aggregateWindow(every: ${every}, fn: count, createEmpty: false)`);
    lines.push(`  |> group(columns: ${JSON.stringify(tags)})`);
    lines.push(`  |> aggregateWindow(every: ${every}, fn: count, createEmpty: false)`);
  } else {
    lines.push(`  |> group(columns: ${JSON.stringify(tags)})`);
    if (every) lines.push(`  |> aggregateWindow(every: ${every}, fn: ${s.agg}, createEmpty: false)`);
    else lines.push(`  |> ${s.agg}()`);
  }
  lines.push(`  |> set(key: "_field", value: "${s.alias}")`);
  return lines.join('\n');
}

const DATASOURCES: Record<Language, { type: string; uid: string }> = {
  flux: { type: 'influxdb', uid: 'sitegate-influxdb' },
  influxql: { type: 'influxdb', uid: 'sitegate-influxql' },
};

/** Threshold lines and the limits' description for a panel's reading metrics (from the hazard rules). */
function thresholdConfig(p: PanelSpec): { overrides: unknown[]; description?: string } {
  const readingMetrics = p.series.filter((s) => s.measurement === 'reading').map((s) => s.field);
  const overrides: unknown[] = [];
  const notes: string[] = [];
  for (const metric of readingMetrics) {
    const { line, notes: n } = limitsOf(metric);
    notes.push(...n);
    if (!line) continue;
    const steps: { color: string; value: number | null }[] = [{ color: 'green', value: null }];
    if (line.warning !== undefined) steps.push({ color: 'orange', value: line.warning });
    if (line.critical !== undefined) steps.push({ color: 'red', value: line.critical });
    overrides.push({
      matcher: { id: 'byFrameRefID', options: metric },
      properties: [
        { id: 'thresholds', value: { mode: 'absolute', steps } },
        { id: 'custom.thresholdsStyle', value: { mode: 'line+area' } },
      ],
    });
  }
  return { overrides, description: notes.length ? `Default limits (hazard rules; a site's settings may override them): ${notes.join('; ')}` : undefined };
}

function panel(p: PanelSpec, id: number, x: number, y: number, lang: Language, sites: SiteSelector): Record<string, unknown> {
  const ds = DATASOURCES[lang];
  const { overrides, description } = thresholdConfig(p);
  const targets = p.series.map((s) => lang === 'flux'
    ? { refId: s.refId, datasource: ds, query: flux(s, sites, p.rawFields) }
    : { refId: s.refId, datasource: ds, rawQuery: true, resultFormat: p.type === 'table' ? 'table' : 'time_series', alias: s.byTags?.length ? `${s.alias} $tag_${s.byTags.at(-1)}` : s.alias, query: influxql(s, sites, p.rawFields) });
  return {
    id, type: p.type, title: p.title,
    ...(description ? { description } : {}),
    datasource: ds,
    gridPos: { h: p.h, w: p.w, x, y },
    ...(p.timeFrom ? { timeFrom: p.timeFrom } : {}),
    fieldConfig: { defaults: p.unit ? { unit: p.unit } : {}, overrides },
    targets,
  };
}

function layout(panels: readonly PanelSpec[], lang: Language, sites: SiteSelector): Record<string, unknown>[] {
  let x = 0;
  let y = 0;
  let rowH = 0;
  return panels.map((p, i) => {
    if (x + p.w > 24) { x = 0; y += rowH; rowH = 0; }
    const out = panel(p, i + 1, x, y, lang, sites);
    x += p.w;
    rowH = Math.max(rowH, p.h);
    return out;
  });
}

function siteVariable(lang: Language, sites: SiteSelector): Record<string, unknown> {
  return {
    name: sites.variable, label: sites.multi ? '工地 Sites' : '工地 Site', type: 'query',
    datasource: DATASOURCES[lang],
    query: lang === 'flux'
      ? 'import "influxdata/influxdb/schema"\nschema.tagValues(bucket: v.defaultBucket, tag: "site")'
      : 'SHOW TAG VALUES WITH KEY = "site"',
    refresh: 2, includeAll: sites.multi, multi: sites.multi,
  };
}

/** Day windows (workers present, alerts raised per day) in this zone; the contract's sites default to China Standard Time. */
const TZ_VARIABLE = {
  name: 'tz', label: '时区 Time zone', type: 'custom', query: 'Asia/Shanghai,Asia/Urumqi,UTC',
  current: { text: 'Asia/Shanghai', value: 'Asia/Shanghai' }, includeAll: false, multi: false,
};

function dashboard(uid: string, title: string, panels: readonly PanelSpec[], lang: Language, sites: SiteSelector): Record<string, unknown> {
  return {
    uid, title, schemaVersion: 39, version: 1, timezone: 'browser', refresh: '30s',
    time: { from: 'now-24h', to: 'now' }, tags: ['sitegate', lang],
    templating: { list: [siteVariable(lang, sites), TZ_VARIABLE] },
    panels: layout(panels, lang, sites),
  };
}

const ONE_SITE: SiteSelector = { variable: 'site', multi: false };
const REGION: SiteSelector = { variable: 'sites', multi: true };

/** File name in dashboards/ → dashboard. */
export const DASHBOARDS: Readonly<Record<string, Record<string, unknown>>> = {
  'sitegate.json': dashboard('sitegate-site', 'sitegate 工地 Site (Flux)', SITE_PANELS, 'flux', ONE_SITE),
  'sitegate-influxql.json': dashboard('sitegate-site-influxql', 'sitegate 工地 Site (InfluxQL)', SITE_PANELS, 'influxql', ONE_SITE),
  'sitegate-region.json': dashboard('sitegate-region', 'sitegate 区域总览 Region overview (InfluxQL)', REGION_PANELS, 'influxql', REGION),
  'sitegate-region-flux.json': dashboard('sitegate-region-flux', 'sitegate 区域总览 Region overview (Flux)', REGION_PANELS, 'flux', REGION),
};

export const render = (d: unknown): string => `${JSON.stringify(d, null, 2)}\n`;
