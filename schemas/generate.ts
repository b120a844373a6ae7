/**
 * Generates the JSON Schema files device vendors and integrators read (schemas/json/) from the
 * zod schemas, the single source of truth. `npm run schemas` rewrites them; a test fails when a
 * committed file differs from what this produces.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import * as s from './src/index.ts';

export const GENERATED: Record<string, z.ZodType> = {
  'checkin': s.Checkin,
  'reading': s.Reading,
  'reading-batch': z.strictObject({ batch: z.array(s.Reading).min(1).max(s.MAX_BATCH) }),
  'status': s.DeviceStatus,
  'device-error': s.DeviceError,
  'wage-payment': s.WagePayment,
  'site': s.SiteBody,
  'site-settings': s.SiteSettings,
  'worker': s.WorkerBody,
  'device': s.DeviceBody,
  'token': s.TokenBody,
  'ingest-outcome': s.IngestOutcome,
  'alert': s.Alert,
  'webhook': s.WebhookBody,
  'webhook-delivery': s.DeliveryBody,
  'error': s.ErrorBody,
  'agent-config': s.AgentConfig,
  'terminal-event': s.TerminalEvent,
  'command': s.CommandMessage,
  'command-result': s.CommandResult,
  'command-request': s.CommandBody,
};

export const OUT_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'json');

export function render(name: string, schema: z.ZodType): string {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return JSON.stringify({ $id: `https://sitegate.dev/schemas/${name}.schema.json`, title: name, ...json }, null, 2) + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  for (const [name, schema] of Object.entries(GENERATED)) {
    fs.writeFileSync(path.join(OUT_DIR, `${name}.schema.json`), render(name, schema));
  }
  console.log(`wrote ${Object.keys(GENERATED).length} schemas to ${path.relative(process.cwd(), OUT_DIR)}`);
}
