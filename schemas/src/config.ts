import { z } from 'zod';

const Port = z.coerce.number().int().min(0).max(65535);

/**
 * The gateway's configuration (contract §3). Read from the environment (`SITEGATE_*`) and,
 * optionally, a JSON file named by `SITEGATE_CONFIG` holding the same keys; the environment wins.
 * Unknown keys are an error, not a silence.
 */
export const Config = z.strictObject({
  SITEGATE_DATA_DIR: z.string().min(1).default('./data'),
  SITEGATE_HTTP_HOST: z.string().min(1).default('0.0.0.0'),
  SITEGATE_HTTP_PORT: Port.default(8080),
  SITEGATE_MQTT_HOST: z.string().min(1).default('0.0.0.0'),
  SITEGATE_MQTT_PORT: Port.default(1883),
  SITEGATE_MQTT_WS_PORT: Port.default(8083).describe('0 turns the WebSocket listener off'),
  SITEGATE_ADMIN_TOKEN: z.string().min(24, 'at least 24 characters').optional(),
  SITEGATE_INFLUX_URL: z.url().optional(),
  SITEGATE_INFLUX_TOKEN: z.string().optional(),
  SITEGATE_INFLUX_ORG: z.string().optional(),
  SITEGATE_INFLUX_BUCKET: z.string().optional(),
  SITEGATE_INFLUX_DB: z.string().optional().describe('InfluxDB 1.x database (v1 /write API)'),
  SITEGATE_INFLUX_USERNAME: z.string().optional(),
  SITEGATE_INFLUX_PASSWORD: z.string().optional(),
  SITEGATE_INFLUX_BATCH: z.coerce.number().int().min(1).max(50_000).default(5000),
  SITEGATE_INFLUX_FLUSH_MS: z.coerce.number().int().min(1).max(60_000).default(500),
  SITEGATE_MODELS_DIR: z.string().optional(),
  SITEGATE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SITEGATE_REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional().describe('region mode (contract §8): joins the instances\' MQTT brokers'),
  SITEGATE_INSTANCE_ID: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, '1–64 of A–Z a–z 0–9 . _ -').optional().describe('names this instance in region mode'),
  SITEGATE_DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'a postgres:// or postgresql:// URL' }).optional()
    .describe('region mode (contract §8): the ledger and the state in this PostgreSQL database, shared by every instance; unset, everything stays in SITEGATE_DATA_DIR'),
  SITEGATE_REGION_LEASE_MS: z.coerce.number().int().min(1_000).max(300_000).default(15_000)
    .describe('region mode: lifetime of an instance\'s leases on the checks, webhooks and sinks; a dead instance\'s duties move within about 4/3 of it'),
  SITEGATE_REGION_SHARDS: z.coerce.number().int().min(1).max(256).default(4)
    .describe('region mode: the sites are split into this many shards, each shard\'s checks run on one instance; the same on every instance, chosen once per region'),
  SITEGATE_ALERT_TIMER_MS: z.coerce.number().int().min(10).max(600_000).default(30_000)
    .describe('real-time period of the pass over the alert timers (escalation, reminders); a deadline fires at most this late'),
  SITEGATE_SECRET_SCRYPT_N: z.coerce.number().int().refine((n) => n >= 1024 && (n & (n - 1)) === 0, 'a power of two ≥ 1024').default(16384),
}).superRefine((c, ctx) => {
  const v2 = [c.SITEGATE_INFLUX_TOKEN, c.SITEGATE_INFLUX_ORG, c.SITEGATE_INFLUX_BUCKET];
  if (c.SITEGATE_INFLUX_URL && !c.SITEGATE_INFLUX_DB && v2.some((x) => !x)) {
    for (const [key, value] of [['SITEGATE_INFLUX_TOKEN', v2[0]], ['SITEGATE_INFLUX_ORG', v2[1]], ['SITEGATE_INFLUX_BUCKET', v2[2]]] as const) {
      if (!value) ctx.addIssue({ code: 'custom', path: [key], message: 'required with SITEGATE_INFLUX_URL (InfluxDB 2.x/3.x), unless SITEGATE_INFLUX_DB selects 1.x' });
    }
  }
  // Each instance needs its own id in region mode (broker session takeover and wills, leases,
  // the connections it holds in PostgreSQL).
  for (const [key, value] of [['SITEGATE_REDIS_URL', c.SITEGATE_REDIS_URL], ['SITEGATE_DATABASE_URL', c.SITEGATE_DATABASE_URL]] as const) {
    if (value && !c.SITEGATE_INSTANCE_ID) ctx.addIssue({ code: 'custom', path: ['SITEGATE_INSTANCE_ID'], message: `required with ${key}, different on each instance` });
  }
  if (c.SITEGATE_INFLUX_DB && !c.SITEGATE_INFLUX_URL) {
    ctx.addIssue({ code: 'custom', path: ['SITEGATE_INFLUX_URL'], message: 'required with SITEGATE_INFLUX_DB' });
  }
});
export type Config = z.infer<typeof Config>;
