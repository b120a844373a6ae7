import type { Site, Token } from '../registry/registry.ts';

/**
 * Who may do what (contract §2 roles). One function for HTTP routes and MQTT subscriptions.
 *   read    — status, live feed, alerts: admin; regulator within its regions; construction unit (sites)
 *   handle  — acknowledge and rectify alerts, upload rectification photos (contract §6): admin;
 *             regulator (region); construction unit (sites)
 *   close   — resolve and reopen alerts (contract §6): admin; regulator (region)
 *   audit   — attendance, evidence, wage checks: admin; regulator (region); auditor (sites)
 *   photo   — photos of a site (check-in, rectification): audit's roles and the construction unit
 *   command — send commands to a site's equipment (contract §7): admin; construction unit (sites)
 *   payroll — post wage payments: admin; payroll (sites)
 *   ingest  — a device's ingest routes: admin; terminal of that very device
 *   admin   — registry and tokens: admin only
 */
export type Access = 'read' | 'handle' | 'close' | 'audit' | 'photo' | 'command' | 'payroll' | 'ingest' | 'admin';

export function siteInScope(token: Token, site: Pick<Site, 'siteId' | 'regionCode'>): boolean {
  const scope = token.scope;
  switch (token.role) {
    case 'admin':
      return true;
    case 'regulator':
      return !!scope && 'regions' in scope && scope.regions.some((prefix) => site.regionCode.startsWith(prefix));
    case 'construction_unit':
    case 'auditor':
    case 'payroll':
      return !!scope && 'sites' in scope && scope.sites.includes(site.siteId);
    case 'terminal':
      return !!scope && 'siteId' in scope && scope.siteId === site.siteId;
  }
}

const ROLES_FOR: Record<Access, ReadonlySet<Token['role']>> = {
  read: new Set(['admin', 'regulator', 'construction_unit']),
  handle: new Set(['admin', 'regulator', 'construction_unit']),
  close: new Set(['admin', 'regulator']),
  audit: new Set(['admin', 'regulator', 'auditor']),
  photo: new Set(['admin', 'regulator', 'auditor', 'construction_unit']),
  command: new Set(['admin', 'construction_unit']),
  payroll: new Set(['admin', 'payroll']),
  ingest: new Set(['admin', 'terminal']),
  admin: new Set(['admin']),
};

export function roleAllows(token: Token, access: Access): boolean {
  return ROLES_FOR[access].has(token.role);
}

/** Whether `token` may use `access` on `site` (and, for terminals, on `deviceId`). */
export function allowed(token: Token, access: Access, site?: Pick<Site, 'siteId' | 'regionCode'>, deviceId?: string): boolean {
  if (!roleAllows(token, access)) return false;
  if (token.role === 'admin') return true;
  if (!site) return false;
  if (!siteInScope(token, site)) return false;
  if (token.role === 'terminal') return !!token.scope && 'deviceId' in token.scope && token.scope.deviceId === deviceId;
  return true;
}
