import { z } from 'zod';
import { HazardSettings } from './settings.ts';

/**
 * The hazard engine's snapshot document (one per site, state.db `hazard_snapshots`): what a
 * restart restores before it replays the ledger after the snapshot. Validated on restore, so a
 * document from an incompatible version is refused instead of misread.
 */
const Evidence = z.record(z.string(), z.unknown());
const SnapshotTransition = z.union([
  z.object({ at: z.number(), type: z.enum(['open', 'raise']), severity: z.union([z.literal(1), z.literal(2)]), value: z.number(), evidence: Evidence }),
  z.object({ at: z.number(), type: z.literal('sustain') }),
  z.object({ at: z.number(), type: z.literal('close'), evidence: Evidence }),
]);

export const HazardSnapshot = z.object({
  version: z.literal(1),
  timezone: z.string(),
  settings: HazardSettings.optional(),
  stats: z.object({
    readings: z.number(),
    samples: z.number(),
    late: z.number(),
    unchanged: z.number(),
    outOfOrder: z.number(),
    evaluations: z.number(),
    signals: z.number(),
    retracted: z.number(),
  }),
  devices: z.array(
    z.object({
      siteId: z.string(),
      deviceId: z.string(),
      latest: z.number(),
      series: z.array(
        z.object({
          metric: z.string(),
          ts: z.array(z.number()),
          v: z.array(z.number()),
          n: z.array(z.number()).optional(),
          sum: z.array(z.number()).optional(),
          energy: z.array(z.number()).optional(),
          max: z.array(z.number()).optional(),
          tracks: z.array(z.object({ rule: z.string(), transitions: z.array(SnapshotTransition) })),
        }),
      ),
    }),
  ),
});
export type HazardSnapshot = z.infer<typeof HazardSnapshot>;
