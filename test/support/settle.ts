import type { Gateway } from '../../gateway/src/app.ts';

/**
 * Resolves once every record committed so far has been through every check, records the checks
 * appended meanwhile (face verdicts) included: no sleeps.
 */
export async function settled(gw: Gateway): Promise<void> {
  await gw.ledger.drained();
  await gw.checks.idle();
}
