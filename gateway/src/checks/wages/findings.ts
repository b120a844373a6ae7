import type { LedgerReads } from '../../ledger/ledgerQueries.ts';
import type { Registry, Site } from '../../registry/registry.ts';
import { wageFacts, type WageFacts } from './facts.ts';
import type { WageFinding, WageKind, WageRule } from './rule.ts';
import { WAGE_RULES } from './rules/index.ts';
import type { WageSettings } from './settings.ts';

export interface WageDecision {
  findings: WageFinding[];
  /** Kinds whose findings are final at `asOf`; the others wait for the period end or the due date. */
  decided: WageKind[];
  pending: WageKind[];
}

/** Whether a rule can be told at `asOf` (see Decidable in rule.ts). */
export function isDecidable(rule: WageRule, f: WageFacts, asOf: number): boolean {
  return rule.decidable === 'always' || asOf >= (rule.decidable === 'due' ? f.dueAt : f.periodEnd);
}

/**
 * The wage findings of one site and period as decided at `asOf` (a pure function of the facts):
 * every rule that can be told by then, sorted by worker then kind.
 */
export function decideWageFindings(f: WageFacts, asOf: number, rules: WageRule[] = WAGE_RULES): WageDecision {
  const decided = rules.filter((r) => isDecidable(r, f, asOf));
  const order = new Map(rules.map((r, i) => [r.kind, i]));
  const findings = decided.flatMap((r) => r.find(f))
    .sort((a, b) => (a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : order.get(a.kind)! - order.get(b.kind)!));
  return { findings, decided: decided.map((r) => r.kind), pending: rules.filter((r) => !decided.includes(r)).map((r) => r.kind) };
}

export interface WageCheckReport extends WageDecision {
  siteId: string;
  month: string;
  timezone: string;
  asOf: number;
  periodEnd: number;
  dueAt: number;
  settings: WageSettings;
}

/** Findings of (site, month) from the ledger as known now, decided at `asOf`: the one computation behind the API and the alerts. */
export async function wageCheckReport(registry: Pick<Registry, 'listWorkers' | 'listSites'>, ledger: LedgerReads, site: Site, month: string, asOf: number): Promise<WageCheckReport> {
  const f = await wageFacts(registry, ledger, site, month);
  return { siteId: site.siteId, month, timezone: site.timezone, asOf, periodEnd: f.periodEnd, dueAt: f.dueAt, settings: f.settings, ...decideWageFindings(f, asOf) };
}
