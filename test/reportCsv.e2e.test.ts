import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testCard } from './support/cards.ts';
import { TestClock } from './support/clock.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';

const SITE = 'S-CSV';
// After September's wages were due (end of October), before November's.
const clock = new TestClock('2026-11-10T12:00:00+08:00');
const card = (n: number) => testCard(n, '622848');

/**
 * Contract §6 "CSV for spreadsheets" on the attendance and wage-check reports, over real HTTP:
 * UTF-8 with a BOM, Chinese headers and labels by default, English with lang=en, the same rows as
 * the JSON answer, card numbers as their last four digits only, the routes' roles and scopes.
 */
describe('attendance and wage-check as CSV', () => {
  let g: TestGateway;
  const tokens: Record<string, string> = {};

  /** GET over the socket, raw bytes kept (a BOM must be checked as bytes, not as decoded text). */
  async function get(path: string, token: string | null = tokens.auditor!) {
    const res = await fetch(`${g.httpUrl}/api/v1${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { res, bytes, text: bytes.toString('utf8') };
  }
  const rows = (bytes: Buffer): string[][] => parse(bytes, { bom: true, relax_column_count: false });

  beforeAll(async () => {
    g = await startGateway({}, { checks: [], now: clock.now });
    await g.device(SITE, 'T1', 'face_terminal', '330106');
    await g.device('S-ELSE', 'T9', 'face_terminal', '511302');
    await g.api('PUT', `/sites/${SITE}/workers/W1`, { name: '张三', employer: '浙江某劳务有限公司', trade: '钢筋工', wageCard: card(1) });
    await g.api('PUT', `/sites/${SITE}/workers/W2`, { name: '王五, "小王"', employer: '某劳务', trade: '木工', wageCard: card(2) });
    await g.api('PUT', `/sites/${SITE}/workers/W3`, { name: '赵六', trade: '杂工' });
    await g.api('PUT', `/sites/${SITE}/workers/PM`, { name: '李四', keyRole: 'project_manager' });
    for (const [name, body] of Object.entries({
      auditor: { role: 'auditor', scope: { sites: [SITE] } }, auditorOut: { role: 'auditor', scope: { sites: ['S-ELSE'] } },
      regulator: { role: 'regulator', scope: { regions: ['3301'] } }, payroll: { role: 'payroll', scope: { sites: [SITE] } },
      unit: { role: 'construction_unit', scope: { sites: [SITE] } },
    })) tokens[name] = (await g.api('POST', '/tokens', body)).json.token;
    // W1 three days in September, W2 two, PM four working days, W3 none.
    const days: Record<string, number> = { W1: 3, W2: 2, PM: 4 };
    const checkins = Object.entries(days).flatMap(([w, n]) => Array.from({ length: n }, (_, i) => {
      const day = `2026-09-${String(i + 1).padStart(2, '0')}`;
      return [{ id: `${w}-${day}-in`, workerId: w, ts: `${day}T08:00:00+08:00`, direction: 'in', method: 'card' },
        { id: `${w}-${day}-out`, workerId: w, ts: `${day}T17:30:00+08:00`, direction: 'out', method: 'card' }];
    }).flat());
    expect((await g.api('POST', `/sites/${SITE}/devices/T1/checkins`, checkins)).json.accepted).toBe(checkins.length);
    // W1 paid below the minimum to another card; W2 not paid at all.
    const csv = 'id,workerId,period,amount,paidAt,card,status\r\n' +
      `P1,W1,2026-09,300,2026-10-10T10:00:00+08:00,${card(9)},paid\r\n`;
    expect((await g.api('POST', `/sites/${SITE}/wage-payments`, csv, { contentType: 'text/csv', token: tokens.payroll })).json).toMatchObject({ accepted: 1 });
  }, 60_000);
  afterAll(async () => g?.stop());

  it('attendance: UTF-8 with BOM, Chinese headers, the JSON answer\'s rows', async () => {
    const { res, bytes, text } = await get(`/sites/${SITE}/attendance?month=2026-09&format=csv`);
    expect(res.status, text).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="attendance-${SITE}-2026-09.csv"`);
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(text).toContain('\r\n');
    const [header, ...body] = rows(bytes);
    expect(header).toEqual(['工号', '姓名', '工种', '所属单位', '关键岗位', '出勤天数', '工时', '出勤工作日', '应出勤工作日', '出勤率', '出勤日期']);
    const json = (await g.api('GET', `/sites/${SITE}/attendance?month=2026-09`, undefined, { token: tokens.auditor })).json;
    expect(body.map((r) => r[0])).toEqual(json.workers.map((w: { workerId: string }) => w.workerId));
    const row = (id: string) => Object.fromEntries(header!.map((h, i) => [h, body.find((r) => r[0] === id)![i]]));
    expect(row('W1')).toEqual({ 工号: 'W1', 姓名: '张三', 工种: '钢筋工', 所属单位: '浙江某劳务有限公司', 关键岗位: '', 出勤天数: '3', 工时: '28.5', 出勤工作日: '', 应出勤工作日: '', 出勤率: '', 出勤日期: '2026-09-01 2026-09-02 2026-09-03' });
    // A name with a comma and quotes survives the round trip (RFC 4180 quoting).
    expect(row('W2')).toMatchObject({ 姓名: '王五, "小王"', 出勤天数: '2' });
    expect(row('W3')).toMatchObject({ 姓名: '赵六', 出勤天数: '0', 工时: '0', 出勤日期: '' });
    const pm = json.workers.find((w: { workerId: string }) => w.workerId === 'PM');
    expect(row('PM')).toMatchObject({ 关键岗位: '项目经理', 出勤天数: '4', 出勤工作日: String(pm.presentWorkingDays), 应出勤工作日: String(json.workingDays), 出勤率: pm.rate.toFixed(4) });
  });

  it('attendance in English with lang=en; regulators of the region may take it', async () => {
    const { res, bytes } = await get(`/sites/${SITE}/attendance?month=2026-09&format=csv&lang=en`, tokens.regulator);
    expect(res.status).toBe(200);
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const [header, ...body] = rows(bytes);
    expect(header).toEqual(['workerId', 'name', 'trade', 'employer', 'keyRole', 'daysPresent', 'hours', 'presentWorkingDays', 'workingDays', 'rate', 'days']);
    expect(body.find((r) => r[0] === 'PM')![4]).toBe('project manager');
    // Names are data, not labels: they stay as registered.
    expect(body.find((r) => r[0] === 'W1')![1]).toBe('张三');
  });

  it('wage check: one row per JSON finding, described in Chinese, card numbers as last four only', async () => {
    const json = (await g.api('GET', `/sites/${SITE}/wage-check?month=2026-09`, undefined, { token: tokens.auditor })).json;
    expect(json.pending).toEqual([]);
    const { res, bytes, text } = await get(`/sites/${SITE}/wage-check?month=2026-09&format=csv`);
    expect(res.status, text).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('sitegate-wage-pending')).toBe('');
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const [header, ...body] = rows(bytes);
    expect(header).toEqual(['工号', '姓名', '问题', '问题代码', '说明', '关联工人', '出勤天数', '发放金额（元）', '最低应发（元）', '差额（元）', '卡号后四位', '登记卡后四位', '发放截止', '付款记录']);
    expect(body.map((r) => `${r[3]} ${r[0]}`)).toEqual(json.findings.map((f: { kind: string; workerId: string }) => `${f.kind} ${f.workerId}`));
    expect(body.map((r) => `${r[3]} ${r[0]}`).sort()).toEqual(['wage.card_mismatch W1', 'wage.underpaid W1', 'wage.unpaid W2']);
    const row = (kind: string) => Object.fromEntries(header!.map((h, i) => [h, body.find((r) => r[3] === kind)![i]]));
    expect(row('wage.underpaid')).toMatchObject({ 姓名: '张三', 问题: '工资低于最低标准', 出勤天数: '3', '发放金额（元）': '300', '最低应发（元）': '360', '差额（元）': '60', 付款记录: 'P1:paid:300' });
    expect(row('wage.underpaid').说明).toBe('2026-09 发放 300 元，低于 3 天 × 120 元 = 360 元（差 60 元）');
    expect(row('wage.card_mismatch')).toMatchObject({ 卡号后四位: card(9).slice(-4), 登记卡后四位: card(1).slice(-4) });
    // The due date in the site's zone: the end of October, Shanghai time.
    expect(row('wage.unpaid')).toMatchObject({ 姓名: '王五, "小王"', 出勤天数: '2', 发放截止: '2026-11-01T00:00:00.000+08:00' });
    expect(row('wage.unpaid').说明).toBe('2026-09 出勤 2 天，截至 2026-11-01T00:00:00.000+08:00 无成功发放记录');
    for (const n of [1, 2, 9]) expect(text).not.toContain(card(n));
  });

  it('wage check in English, and a month not yet due names its pending kinds', async () => {
    const en = await get(`/sites/${SITE}/wage-check?month=2026-09&format=csv&lang=en`);
    const [header, ...body] = rows(en.bytes);
    expect(header!.slice(0, 5)).toEqual(['workerId', 'name', 'finding', 'kind', 'description']);
    const json = (await g.api('GET', `/sites/${SITE}/wage-check?month=2026-09`)).json;
    expect(body.map((r) => r[4])).toEqual(json.findings.map((f: { message: string }) => f.message));
    expect(body.find((r) => r[3] === 'wage.unpaid')![2]).toBe('wage unpaid');

    const oct = await get(`/sites/${SITE}/wage-check?month=2026-10&format=csv`);
    expect(oct.res.status).toBe(200);
    expect(oct.res.headers.get('sitegate-wage-pending')).toBe('wage.unpaid,wage.underpaid');
    expect(rows(oct.bytes)).toHaveLength(1); // the header alone
  });

  it('keeps the routes\' roles and scopes, and answers bad parameters with a 400 that names them', async () => {
    for (const path of [`/sites/${SITE}/attendance?month=2026-09&format=csv`, `/sites/${SITE}/wage-check?month=2026-09&format=csv`]) {
      expect((await get(path, null)).res.status).toBe(401);
      expect((await get(path, tokens.auditorOut)).res.status).toBe(403);
      expect((await get(path, tokens.payroll)).res.status).toBe(403);
      expect((await get(path, tokens.unit)).res.status).toBe(403);
    }
    for (const [q, field] of [['format=xlsx', 'format'], ['format=csv&lang=fr', 'lang'], ['month=2026-13&format=csv', 'month']]) {
      const month = q.startsWith('month') ? '' : 'month=2026-09&';
      for (const report of ['attendance', 'wage-check']) {
        const r = await g.api('GET', `/sites/${SITE}/${report}?${month}${q}`, undefined, { token: tokens.auditor });
        expect(r.status, `${report} ${q}`).toBe(400);
        expect(r.json.error).toBe('bad_request');
        expect(r.text).toContain(field);
      }
    }
  });
});
