import { ID_PATTERN } from '../../../schemas/src/common.ts';

/** Contract §1 and §7 topics, defined once. */
export const CHANNELS = ['checkin', 'telemetry', 'status', 'snapshot', 'errors', 'commands', 'command-results'] as const;
export type Channel = (typeof CHANNELS)[number];
/** What a device publishes into the ledger (command results go to the command store, §7). */
export type InboundChannel = Exclude<Channel, 'errors' | 'commands' | 'command-results'>;

const KiB = 1024;
/** Payload limits per channel (contract §1). */
export const MAX_PAYLOAD: Record<InboundChannel, number> = {
  checkin: 2048 * KiB,
  snapshot: 2048 * KiB,
  telemetry: 256 * KiB,
  status: 16 * KiB,
};

export interface DeviceTopic {
  siteId: string;
  deviceId: string;
  channel: string;
}

/** `sites/{siteId}/devices/{deviceId}/{channel}` → its parts, or null for any other shape. */
export function parseDeviceTopic(topic: string): DeviceTopic | null {
  const p = topic.split('/');
  if (p.length !== 5 || p[0] !== 'sites' || p[2] !== 'devices') return null;
  if (!ID_PATTERN.test(p[1]!) || !ID_PATTERN.test(p[3]!)) return null;
  return { siteId: p[1]!, deviceId: p[3]!, channel: p[4]! };
}

export const isInboundChannel = (c: string): c is InboundChannel => c === 'checkin' || c === 'telemetry' || c === 'status' || c === 'snapshot';

export const deviceTopic = (siteId: string, deviceId: string, channel: Channel) => `sites/${siteId}/devices/${deviceId}/${channel}`;
export const alertsTopic = (siteId: string) => `sites/${siteId}/alerts`;
