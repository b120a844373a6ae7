import { z } from 'zod';
import { Id, RegionCode } from './common.ts';
import { Alert, AlertEventType, AlertKind } from './alert.ts';

/**
 * Events a webhook can subscribe to (contract §6); `severity` changes travel inside later events,
 * and `linkage` entries (contract §7) in the alert's history.
 */
export const WebhookEvent = AlertEventType.exclude(['severity', 'linkage']);
export type WebhookEvent = z.infer<typeof WebhookEvent>;

const KindPrefix = z.string().min(1).max(64).refine(
  (p) => AlertKind.options.some((k) => k.startsWith(p)),
  'a prefix of an alert kind, e.g. "hazard." or "wage.unpaid"',
);

/** `PUT /webhooks/{id}` (contract §6). The secret signs each delivery and is never shown again. */
export const WebhookBody = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).max(2000),
  secret: z.string().min(16).max(200),
  scope: z.union([
    z.strictObject({ regions: z.array(RegionCode).min(1) }),
    z.strictObject({ sites: z.array(Id).min(1) }),
  ]),
  levels: z.array(z.number().int().min(1).max(3)).min(1).optional(),
  kinds: z.array(KindPrefix).min(1).optional(),
  events: z.array(WebhookEvent).min(1).optional(),
});
export type WebhookBody = z.infer<typeof WebhookBody>;

export const Webhook = WebhookBody.omit({ secret: true }).extend({ id: Id, createdAt: z.string(), updatedAt: z.string() });

export const DeliveryState = z.enum(['pending', 'delivered', 'failed']);
export type DeliveryState = z.infer<typeof DeliveryState>;

/** What a receiver gets: `POST url` with this body, signed (contract §6). */
export const DeliveryBody = z.object({ deliveryId: z.string(), event: WebhookEvent, at: z.string(), alert: Alert });

export const Delivery = z.object({
  deliveryId: z.string(), webhookId: Id, alertId: z.string(), event: WebhookEvent, at: z.string(),
  state: DeliveryState, attempts: z.number().int(), nextAttemptAt: z.string().optional(),
  lastStatus: z.number().int().optional().describe('HTTP status of the last attempt'),
  lastError: z.string().optional(), deliveredAt: z.string().optional(),
});
