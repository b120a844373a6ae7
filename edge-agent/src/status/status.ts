import type { LinkStats } from '../publish/deviceLink.ts';

export interface SourceStats {
  name: string;
  /** Events stored in the queue. */
  accepted: number;
  /** Events refused because the queue was full. */
  refused: number;
  errors: Record<string, number>;
  lastError?: { code: string; message: string; at: number };
  /** Non-errors worth seeing (`unchanged` camera frames). */
  counts: Record<string, number>;
}

/** What `sitegate-agent status` and the local page show (GET /status.json). */
export interface AgentStatus {
  siteId: string;
  at: number;
  running: boolean;
  queue: { depth: number; bytes: number; maxBytes: number; byChannel: Record<string, number>; oldestQueuedAt?: number; oldestAgeS?: number };
  lastPublishAt?: number;
  drain: { ratePerS: number; etaS?: number };
  devices: (LinkStats & { queued: number })[];
  sources: SourceStats[];
}

/**
 * Events acknowledged per second over the last 10 s, on the monotonic clock (a drain rate must
 * not jump when the wall clock is set, and the event-time clock may be a simulator's).
 */
export class DrainMeter {
  private readonly samples: [number, number][] = [];
  constructor(private readonly windowMs = 10_000, private readonly mono = () => performance.now()) {}

  add(n: number): void {
    this.samples.push([this.mono(), n]);
    this.trim();
  }

  rate(): number {
    this.trim();
    const total = this.samples.reduce((s, [, n]) => s + n, 0);
    return total / (this.windowMs / 1000);
  }

  private trim(): void {
    const from = this.mono() - this.windowMs;
    while (this.samples.length && this.samples[0]![0] < from) this.samples.shift();
  }
}

const iso = (t?: number) => (t === undefined ? '—' : new Date(t).toISOString());

/** Plain text for the CLI. */
export function renderStatus(s: AgentStatus): string {
  const q = s.queue;
  const lines = [
    `site ${s.siteId}  agent ${s.running ? 'running' : 'NOT RUNNING (read from the queue file)'}`,
    `queue        ${q.depth} events, ${(q.bytes / 1048576).toFixed(1)} of ${(q.maxBytes / 1048576).toFixed(0)} MiB  ${Object.entries(q.byChannel).map(([c, n]) => `${c}=${n}`).join(' ')}`,
    `oldest       ${iso(q.oldestQueuedAt)}${q.oldestAgeS !== undefined ? ` (${Math.round(q.oldestAgeS)} s ago)` : ''}`,
    `last publish ${iso(s.lastPublishAt)}`,
    `drain        ${s.drain.ratePerS.toFixed(1)} events/s${s.drain.etaS !== undefined ? `, empty in ~${Math.ceil(s.drain.etaS)} s` : ''}`,
  ];
  for (const d of s.devices) lines.push(`device ${d.deviceId.padEnd(16)} ${d.connected ? 'connected   ' : 'disconnected'} queued ${d.queued} in flight ${d.inflight} sent ${d.sent}${d.rejectedByGateway ? ` rejected by gateway ${d.rejectedByGateway} (last: ${d.lastRejection?.reason} ${d.lastRejection?.ref})` : ''}${d.lastError ? `  last error: ${d.lastError}` : ''}`);
  for (const src of s.sources) {
    const errs = Object.entries(src.errors).map(([c, n]) => `${c}=${n}`).join(' ');
    const counts = Object.entries(src.counts).map(([c, n]) => `${c}=${n}`).join(' ');
    lines.push(`source ${src.name.padEnd(24)} accepted ${src.accepted} refused ${src.refused}${counts ? `  ${counts}` : ''}${errs ? `  errors: ${errs}` : ''}`);
    if (src.lastError) lines.push(`       last error ${iso(src.lastError.at)} ${src.lastError.code}: ${src.lastError.message}`);
  }
  return lines.join('\n');
}
