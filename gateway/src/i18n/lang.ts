import type { KeyRole } from '../../../schemas/src/api.ts';
import type { AlertKind } from '../checks/types.ts';

/**
 * The languages pages and exports speak: Chinese by default (the users are Chinese regulators,
 * auditors and construction units), English on request with `?lang=en` on any route that renders
 * text for people (CSV exports, the live page). JSON answers are for programs and keep their
 * English field names and codes in both.
 */
export type Lang = 'zh' | 'en';

/** A label in both languages. */
export type Label = Readonly<Record<Lang, string>>;

export const KEY_ROLE_LABELS: Readonly<Record<KeyRole, Label>> = {
  project_manager: { zh: '项目经理', en: 'project manager' },
  technical_lead: { zh: '技术负责人', en: 'technical lead' },
  safety_officer: { zh: '安全员', en: 'safety officer' },
  quality_officer: { zh: '质量员', en: 'quality officer' },
  chief_supervisor: { zh: '总监理工程师', en: 'chief supervisor' },
  supervisor: { zh: '监理工程师', en: 'supervisor' },
};

export const ALERT_KIND_LABELS: Readonly<Record<AlertKind, Label>> = {
  'keystaff.absent': { zh: '关键岗位人员缺勤', en: 'key staff absent' },
  'keystaff.attendance_low': { zh: '关键岗位人员出勤率低', en: 'key staff attendance low' },
  'keystaff.multi_site': { zh: '一人多岗', en: 'same person at two sites' },
  'checkin.face_mismatch': { zh: '人脸比对不符（疑似代打卡）', en: 'face does not match (proxy check-in)' },
  'checkin.no_face': { zh: '打卡照片无人脸', en: 'no face in check-in photo' },
  'checkin.unknown_worker': { zh: '未登记人员打卡', en: 'unregistered worker checked in' },
  'wage.unpaid': { zh: '工资未发放', en: 'wage unpaid' },
  'wage.ghost': { zh: '无出勤发薪（疑似虚列）', en: 'paid with no attendance' },
  'wage.card_mismatch': { zh: '发放至非本人登记卡', en: 'paid to a card not registered to the worker' },
  'wage.shared_card': { zh: '一卡多人', en: 'one card for several workers' },
  'wage.underpaid': { zh: '工资低于最低标准', en: 'paid below the minimum' },
  'hazard.threshold': { zh: '监测值超限', en: 'reading beyond its limit' },
  'hazard.rate': { zh: '变化速率超限', en: 'changing faster than its rate limit' },
  'device.offline': { zh: '设备离线', en: 'device offline' },
};

export const YES: Label = { zh: '是', en: 'yes' };
export const NO: Label = { zh: '否', en: 'no' };
