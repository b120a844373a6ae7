import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { SimulatorSource } from '../../../../schemas/src/agent.ts';
import type { NewEvent } from '../../buffer/outbox.ts';
import type { Input, InputContext } from '../input.ts';
import { reencode } from '../photo.ts';
import { mulberry32 } from '../../../../schemas/src/random.ts';

type Config = z.infer<typeof SimulatorSource>;

const FACES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/faces');
const HOUR = 3_600_000;
/** The simulated site keeps China Standard Time (UTC+8, no daylight saving), the contract's default zone. */
const SITE_OFFSET = 8 * HOUR;

/** A small seeded generator: the same config gives the same site, run after run. */
const rng = mulberry32;

/**
 * `--simulate`: a whole site for demos and load tests, through the same queue and links as real
 * equipment. Time is its own (`start` + steps of `stepS`), advanced by one step per poll, and the
 * runtime polls every `stepS / speed` real seconds, so event times never come from the wall
 * clock. Per step: a check-in wave around the shifts (07:00–07:45 in, 17:00–17:45 out, site
 * time) with photos from test/fixtures/faces, dust (pm10, pm2_5) and noise following the working
 * day, a tower crane's lift cycles, and a pit monitor drifting slowly.
 */
export class SimulatorInput implements Input {
  readonly name = 'simulator';
  readonly devices: { deviceId: string; secret: string }[];
  readonly intervalS: number;
  private ctx?: InputContext;
  private t: number;
  private readonly rand = rng(13);
  private readonly arrival: number[];
  private readonly departure: number[];
  private photos: string[] = [];
  private pit = 0;

  constructor(private readonly cfg: Config) {
    this.devices = [cfg.terminal, cfg.dust, cfg.noise, cfg.crane, cfg.pit].map((d) => ({ deviceId: d.deviceId, secret: d.secret }));
    this.intervalS = cfg.stepS / cfg.speed;
    this.t = typeof cfg.start === 'number' ? cfg.start : Date.parse(cfg.start);
    // Minutes after 07:00 / 17:00 at which each worker comes and goes: most in the first 20 min.
    this.arrival = Array.from({ length: cfg.workers }, () => Math.floor(45 * this.rand() ** 2));
    this.departure = Array.from({ length: cfg.workers }, () => Math.floor(45 * this.rand()));
  }

  /** Simulated now (the event-time clock of everything this source produces). */
  get now(): number { return this.t; }

  async start(ctx: InputContext): Promise<void> {
    this.ctx = ctx;
    const files = fs.readdirSync(FACES).filter((f) => /_\d\.jpg$/.test(f)).sort();
    this.photos = await Promise.all(files.map(async (f) => (await reencode(fs.readFileSync(path.join(FACES, f)), { maxSide: 640, quality: 80 })).toString('base64')));
  }

  /** One simulated step: everything that happened in (t, t + stepS]. */
  async gather(): Promise<void> {
    const from = this.t;
    this.t += this.cfg.stepS * 1000;
    const events = [...this.checkins(from, this.t), ...this.readings(this.t)];
    this.ctx!.enqueue(events);
  }

  private checkins(from: number, to: number): NewEvent[] {
    const out: NewEvent[] = [];
    const dayStart = Math.floor((to + SITE_OFFSET) / (24 * HOUR)) * 24 * HOUR - SITE_OFFSET;
    const day = new Date(dayStart + SITE_OFFSET).toISOString().slice(0, 10);
    for (let w = 0; w < this.cfg.workers; w++) {
      const workerId = `W${String(w + 1).padStart(4, '0')}`;
      for (const [direction, at] of [['in', dayStart + 7 * HOUR + this.arrival[w]! * 60_000], ['out', dayStart + 17 * HOUR + this.departure[w]! * 60_000]] as const) {
        if (at <= from || at > to) continue;
        const id = `sim-${workerId}-${day}-${direction}`;
        const photo = this.photos.length ? this.photos[w % this.photos.length] : undefined;
        const body = { id, workerId, ts: at, direction, method: 'face', terminalScore: 0.9, ...(photo ? { photo } : {}) };
        out.push({ deviceId: this.cfg.terminal.deviceId, channel: 'checkin', msgId: id, payload: Buffer.from(JSON.stringify(body)) });
      }
    }
    return out.sort((a, b) => JSON.parse(a.payload.toString()).ts - JSON.parse(b.payload.toString()).ts);
  }

  private readings(ts: number): NewEvent[] {
    const hour = ((ts + SITE_OFFSET) % (24 * HOUR)) / HOUR;
    const working = hour >= 7 && hour < 18;
    const r = this.rand;
    // Dust: a morning inversion and the afternoon's earthworks; noise: machines on in working hours.
    const dust = 35 + 25 * Math.exp(-((hour - 8) ** 2) / 4) + (working ? 30 * Math.exp(-((hour - 15) ** 2) / 6) : 0) + 8 * r();
    const noise = working ? 62 + 8 * r() : 44 + 4 * r();
    // Crane: a lift cycle of about six minutes in working hours, idle otherwise.
    const phase = (ts / 60_000) % 6;
    const load = working && phase < 3 ? 40 + 45 * Math.sin((Math.PI * phase) / 3) + 5 * r() : 0;
    // Pit: about 0.5 mm a day of cumulative displacement, with survey noise.
    this.pit += (this.cfg.stepS / 86_400) * 0.5 * (0.5 + r());
    const one = (d: { deviceId: string }, metrics: Record<string, number>): NewEvent => {
      const reading = { id: `sim-${ts}`, ts, metrics: Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, Math.round(v * 100) / 100])) };
      return { deviceId: d.deviceId, channel: 'telemetry', msgId: reading.id, payload: Buffer.from(JSON.stringify(reading)) };
    };
    return [
      one(this.cfg.dust, { pm10: dust, pm2_5: dust * 0.55, temperature_c: 12 + 8 * Math.sin(((hour - 9) * Math.PI) / 12) }),
      one(this.cfg.noise, { noise_dba: noise }),
      one(this.cfg.crane, { crane_load_pct: load, crane_moment_pct: load * 0.9, wind_speed_ms: 2 + 3 * r() }),
      one(this.cfg.pit, { pit_displacement_mm: this.pit, pit_settlement_mm: this.pit * 0.6 }),
    ];
  }

  async stop(): Promise<void> {}
}
