import type { WageRule } from '../rule.ts';
import { cardMismatch } from './cardMismatch.ts';
import { ghost } from './ghost.ts';
import { sharedCard } from './sharedCard.ts';
import { underpaid } from './underpaid.ts';
import { unpaid } from './unpaid.ts';

/** The wage rules of domain.md "Wages", one line each. */
export const WAGE_RULES: WageRule[] = [unpaid, ghost, cardMismatch, sharedCard, underpaid];
