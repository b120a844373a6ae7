import type { Gateway } from '../../gateway/src/app.ts';
import { FACE_VERIFICATION, type FaceVerification } from '../../gateway/src/checks/face-verification/faceVerification.ts';

/**
 * Resolves once every record committed so far has been through every check, every face check-in
 * has its verdict, and the verdicts themselves have been through the checks: no sleeps.
 */
export async function settled(gw: Gateway): Promise<void> {
  const face = gw.checks.get<FaceVerification>(FACE_VERIFICATION);
  for (;;) {
    await gw.ledger.drained();
    await gw.checks.idle();
    if (!face || face.backlog === 0) break;
    await face.idle();
  }
  await gw.ledger.drained();
  await gw.checks.idle();
}
