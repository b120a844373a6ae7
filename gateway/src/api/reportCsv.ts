import type { MonthAttendance } from '../attendance/attendance.ts';
import { SiteCalendar } from '../calendar/siteCalendar.ts';
import type { WageCheckReport } from '../checks/wages/findings.ts';
import type { WageFinding } from '../checks/wages/rule.ts';
import { toCsv } from '../evidence/csv.ts';
import { siteTime } from '../evidence/workerEvidence.ts';
import { ALERT_KIND_LABELS, KEY_ROLE_LABELS, type Label, type Lang } from '../i18n/lang.ts';
import type { Worker } from '../registry/registry.ts';

/**
 * The attendance and wage-check reports as spreadsheets (contract §6 "CSV for spreadsheets"):
 * UTF-8 with BOM, RFC 4180, one header row, headers and labels in the asked language (Chinese by
 * default). Codes a program would filter on (workerId, the finding's kind) stay as they are in
 * a column of their own beside their label. Built on the report thread like the JSON bodies.
 */

type Column<T> = readonly [Label, (row: T) => string];

function render<T>(columns: readonly Column<T>[], rows: readonly T[], lang: Lang): string {
  return toCsv([columns.map(([label]) => label[lang]), ...rows.map((r) => columns.map(([, cell]) => cell(r)))]);
}

const num = (n: number | undefined) => (n === undefined ? '' : String(n));

interface AttendanceRow {
  a: MonthAttendance['workers'][number];
  w: Worker | undefined;
  workingDays: number;
  lang: Lang;
}

const ATTENDANCE_COLUMNS: readonly Column<AttendanceRow>[] = [
  [{ zh: '工号', en: 'workerId' }, (r) => r.a.workerId],
  [{ zh: '姓名', en: 'name' }, (r) => r.w?.name ?? ''],
  [{ zh: '工种', en: 'trade' }, (r) => r.w?.trade ?? ''],
  [{ zh: '所属单位', en: 'employer' }, (r) => r.w?.employer ?? ''],
  [{ zh: '关键岗位', en: 'keyRole' }, (r) => (r.a.keyRole ? KEY_ROLE_LABELS[r.a.keyRole][r.lang] : '')],
  [{ zh: '出勤天数', en: 'daysPresent' }, (r) => String(r.a.daysPresent)],
  [{ zh: '工时', en: 'hours' }, (r) => String(r.a.hours)],
  [{ zh: '出勤工作日', en: 'presentWorkingDays' }, (r) => num(r.a.presentWorkingDays)],
  [{ zh: '应出勤工作日', en: 'workingDays' }, (r) => (r.a.keyRole ? String(r.workingDays) : '')],
  [{ zh: '出勤率', en: 'rate' }, (r) => (r.a.rate === undefined ? '' : r.a.rate.toFixed(4))],
  // One cell, dates separated by spaces: a spreadsheet keeps it as text, a program splits it.
  [{ zh: '出勤日期', en: 'days' }, (r) => r.a.days.join(' ')],
];

/** `GET …/attendance?format=csv`: a row per registered worker (zero days included), as the JSON lists them. */
export function attendanceCsv(a: MonthAttendance, workers: readonly Worker[], lang: Lang): string {
  const byId = new Map(workers.filter((w) => w.siteId === a.siteId).map((w) => [w.workerId, w]));
  return render(ATTENDANCE_COLUMNS, a.workers.map((x) => ({ a: x, w: byId.get(x.workerId), workingDays: a.workingDays, lang })), lang);
}

interface FindingRow {
  f: WageFinding;
  w: Worker | undefined;
  month: string;
  cal: SiteCalendar;
  lang: Lang;
}

const localTime = (cal: SiteCalendar, iso: string | undefined) => (iso === undefined ? '' : siteTime(cal, Date.parse(iso)));
const yuan = (n: number | undefined) => (n === undefined ? '?' : String(n));

/**
 * The finding said in Chinese from its numbers (the rules' own `message` is English and is what
 * `lang=en` shows). Card numbers appear only as their last four digits, as everywhere.
 */
function zhDescription(r: FindingRow): string {
  const { f, month } = r;
  switch (f.kind) {
    case 'wage.unpaid':
      return `${month} 出勤 ${f.daysPresent} 天，截至 ${localTime(r.cal, f.dueAt)} 无成功发放记录`;
    case 'wage.ghost':
      return `${month} 无出勤记录，却发放 ${yuan(f.amount)} 元`;
    case 'wage.card_mismatch':
      return `${month} 发放 ${yuan(f.amount)} 元至尾号 ${(f.paidCardLast4 ?? []).join('、')} 的卡，${f.registeredCardLast4 ? `非本人登记卡（尾号 ${f.registeredCardLast4}）` : '本人未登记工资卡'}`;
    case 'wage.shared_card':
      return `尾号 ${f.cardLast4 ?? '?'} 的卡由 ${(f.workers ?? []).join('、')} 共用（${month}）${f.withSiteId ? `，其中 ${f.with} 在工地 ${f.withSiteId}` : ''}`;
    case 'wage.underpaid':
      return `${month} 发放 ${yuan(f.amount)} 元，低于 ${f.daysPresent} 天 × ${yuan(f.minDailyWage)} 元 = ${yuan(f.minimum)} 元（差 ${yuan(f.shortfall)} 元）`;
  }
}

const FINDING_COLUMNS: readonly Column<FindingRow>[] = [
  [{ zh: '工号', en: 'workerId' }, (r) => r.f.workerId],
  [{ zh: '姓名', en: 'name' }, (r) => r.w?.name ?? ''],
  [{ zh: '问题', en: 'finding' }, (r) => ALERT_KIND_LABELS[r.f.kind][r.lang]],
  [{ zh: '问题代码', en: 'kind' }, (r) => r.f.kind],
  [{ zh: '说明', en: 'description' }, (r) => (r.lang === 'zh' ? zhDescription(r) : r.f.message)],
  [{ zh: '关联工人', en: 'with' }, (r) => r.f.with ?? ''],
  [{ zh: '出勤天数', en: 'daysPresent' }, (r) => String(r.f.daysPresent)],
  [{ zh: '发放金额（元）', en: 'amountCny' }, (r) => num(r.f.amount)],
  [{ zh: '最低应发（元）', en: 'minimumCny' }, (r) => num(r.f.minimum)],
  [{ zh: '差额（元）', en: 'shortfallCny' }, (r) => num(r.f.shortfall)],
  [{ zh: '卡号后四位', en: 'cardLast4' }, (r) => r.f.cardLast4 ?? (r.f.paidCardLast4 ?? []).join(' ')],
  [{ zh: '登记卡后四位', en: 'registeredCardLast4' }, (r) => r.f.registeredCardLast4 ?? ''],
  [{ zh: '发放截止', en: 'dueAt' }, (r) => localTime(r.cal, r.f.dueAt)],
  [{ zh: '付款记录', en: 'payments' }, (r) => r.f.payments.map((p) => `${p.id}:${p.status}:${p.amount}`).join(' ')],
];

/**
 * `GET …/wage-check?format=csv`: a row per finding, times in the site's zone. The kinds not
 * decided yet are not rows; the route names them in a header (`sitegate-wage-pending`).
 */
export function wageCheckCsv(r: WageCheckReport, workers: readonly Worker[], lang: Lang): string {
  const byId = new Map(workers.filter((w) => w.siteId === r.siteId).map((w) => [w.workerId, w]));
  const cal = SiteCalendar.of(r.timezone);
  return render(FINDING_COLUMNS, r.findings.map((f) => ({ f, w: byId.get(f.workerId), month: r.month, cal, lang })), lang);
}
