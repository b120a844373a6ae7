import { z } from 'zod';
import { Id, Timestamp } from './common.ts';
import { AlertKind, Severity } from './alert.ts';

/** Contract §7: commands to site equipment, their results, and linkage (联动) in site settings. */

/** An action name the equipment's agent maps to a write (`on`, `off`, `set_level`). */
export const CommandAction = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, '1–64 characters of A-Z a-z 0-9 _ . -');
/** Small flat parameters (`{"level": 3}`): the agent reads them by name. */
export const CommandParams = z.record(z.string().max(64), z.union([z.number(), z.string().max(256), z.boolean()]))
  .refine((p) => Object.keys(p).length <= 32, 'at most 32 parameters');

/** How long a command waits for its device by default, and at most (seconds). */
export const DEFAULT_COMMAND_TTL_S = 600;
export const MAX_COMMAND_TTL_S = 7 * 86_400;
const TtlS = z.number().int().min(1).max(MAX_COMMAND_TTL_S);

/** `POST /sites/{siteId}/devices/{deviceId}/commands`. */
export const CommandBody = z.strictObject({
  action: CommandAction,
  params: CommandParams.optional(),
  ttlS: TtlS.optional().describe(`seconds the command may wait for its device (default ${DEFAULT_COMMAND_TTL_S}); undelivered by then it is expired`),
});
export type CommandBody = z.infer<typeof CommandBody>;

/**
 * How long a delivered command waits for its answer (seconds from the PUBACK). A device acts on a
 * command when it receives it, not later (the edge agent refuses one past `expiresAt`), so an
 * answer that has not come in this time is not coming: the command is `expired` instead of
 * `delivered` for ever. An answer that still arrives is acknowledged and kept in the audit trail.
 */
export const COMMAND_ANSWER_TIMEOUT_S = 600;

/**
 * pending (stored, not yet acknowledged by the device) → delivered (the device PUBACKed it) →
 * succeeded | failed (its answer on `…/command-results`); expired: not delivered by `expiresAt`,
 * or delivered and not answered within COMMAND_ANSWER_TIMEOUT_S.
 */
export const CommandState = z.enum(['pending', 'delivered', 'succeeded', 'failed', 'expired']);
export type CommandState = z.infer<typeof CommandState>;
export const FINAL_COMMAND_STATES: readonly CommandState[] = ['succeeded', 'failed', 'expired'];

export const Command = z.object({
  commandId: z.string(),
  siteId: Id,
  deviceId: Id,
  action: CommandAction,
  params: CommandParams.optional(),
  state: CommandState,
  createdAt: z.string(),
  expiresAt: z.string(),
  deliveredAt: z.string().optional(),
  resultAt: z.string().optional().describe('when the gateway received the result'),
  resultTs: z.string().optional().describe('the device\'s own time of the result'),
  message: z.string().optional().describe('the device\'s message with its result (why it failed)'),
  by: z.string().describe('who sent it: a token, or `linkage` for a site\'s linkage rule'),
  alertId: z.string().optional().describe('the alert whose linkage sent it'),
});
export type Command = z.infer<typeof Command>;

export const CommandCreated = z.object({ commandId: z.string(), state: CommandState, expiresAt: z.string() });

/** Gateway → device on `sites/{siteId}/devices/{deviceId}/commands` (QoS 1). */
export const CommandMessage = z.object({
  commandId: z.string().min(1).max(128),
  action: CommandAction,
  params: CommandParams.optional(),
  expiresAt: Timestamp.describe('the device should not act on it after this time'),
});
export type CommandMessage = z.infer<typeof CommandMessage>;

/** Device → gateway on `sites/{siteId}/devices/{deviceId}/command-results` (QoS 1). */
export const CommandResult = z.strictObject({
  commandId: z.string().min(1).max(128),
  ts: Timestamp,
  ok: z.boolean(),
  message: z.string().max(2000).optional(),
});
export type CommandResult = z.infer<typeof CommandResult>;

/**
 * A site's linkage rule (contract §7, settings `linkage`): when an alert matching `on` opens (or
 * rises to `severity`), `action` goes to `deviceId`; when it clears or is closed, `clearAction`.
 */
export const LinkageRule = z.strictObject({
  on: z.strictObject({
    kind: AlertKind,
    metric: z.string().min(1).max(64).optional(),
    severity: Severity.optional().describe('the least severity that triggers (a hazard alert rising to it triggers then)'),
  }),
  deviceId: Id,
  action: CommandAction,
  params: CommandParams.optional(),
  clearAction: CommandAction.optional(),
  clearParams: CommandParams.optional(),
  ttlS: TtlS.optional().describe(`seconds each command may wait for its device (default ${DEFAULT_COMMAND_TTL_S})`),
});
export type LinkageRule = z.infer<typeof LinkageRule>;
