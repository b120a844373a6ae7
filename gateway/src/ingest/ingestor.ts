import type { Logger } from 'pino';
import type { Clock } from '../clock/clock.ts';
import type { Reason } from '../errors.ts';
import type { AnyLedgerStore, Done, LedgerRecord, PayloadLedger, PayloadResult } from '../ledger/types.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Registry } from '../registry/registry.ts';
import { decodeMessage, validateValue, validateWagePayment, type Decoded, type Origin, type Rejection } from './validate.ts';
import { MAX_PAYLOAD, type InboundChannel } from './topics.ts';

export type Via = 'mqtt' | 'http';

type Counter = { inc(n?: number): void };
const byKind = () => new Map<string, Counter>();

export interface Outcome {
  ref: string;
  outcome: 'accepted' | 'duplicate' | 'rejected';
  reason?: Reason;
  message?: string;
  seq?: number;
  row?: number;
}

/** What a device's publish came to: counts, and each rejection with its reason (for `…/errors`). */
export interface PublishReport {
  accepted: number;
  duplicate: number;
  rejected: { ref: string; reason?: Reason; message?: string }[];
}

export interface IngestReport {
  accepted: number;
  duplicate: number;
  rejected: number;
  results: Outcome[];
}

export interface IngestorDeps {
  /** Where records are appended (any ledger: only its group commit is used here). */
  ledger: Pick<AnyLedgerStore, 'appendMany'>;
  /**
   * When given (the SQLite ledger is one), device payloads go to it undecoded and are decoded and
   * validated on its writer's thread with the rest of their group; otherwise here.
   */
  payloads?: PayloadLedger;
  registry: Registry;
  metrics: Metrics;
  logger: Logger;
  now: Clock;
}

/**
 * The one ingest pipeline behind MQTT and HTTP: decode → validate → dedupe + append (ledger,
 * group commit) → report. The returned promise settles only after every accepted record is
 * durable; the caller acknowledges (PUBACK, HTTP 200) after that.
 */
export class Ingestor {
  private readonly deps: IngestorDeps;

  constructor(deps: IngestorDeps) {
    this.deps = deps;
  }

  /**
   * A device's MQTT payload. `done` is called once: after the commit of the payload's records, or
   * with the error that kept them from being durable (the publish is then not acknowledged). A
   * callback and counts rather than a promise and an outcome per record: this runs for every
   * message a device publishes (issue 11).
   */
  ingestPayload(channel: InboundChannel, payload: Buffer, o: { siteId: string; deviceId: string; topic: string; via: Via }, done: Done<PublishReport>): void {
    const origin = this.origin(o.siteId, o.deviceId);
    // An oversized payload is refused here, before its bytes are copied anywhere.
    if (this.deps.payloads && payload.length <= MAX_PAYLOAD[channel]) {
      return this.deps.payloads.submitPayload(
        { topic: o.topic, siteId: o.siteId, deviceId: o.deviceId, payload, receivedAt: origin.receivedAt },
        (err, r) => (err ? done(err) : done(null, this.payloadReport(r!, o.via))),
      );
    }
    this.store(this.guard(() => decodeMessage(channel, payload, origin, o.topic), o.topic), o.via).then(
      (r) => done(null, { accepted: r.accepted, duplicate: r.duplicate, rejected: r.results.filter((x) => x.outcome === 'rejected') }),
      (err: Error) => done(err),
    );
  }

  /** A payload decoded and stored by the ledger: counted as `store` counts. */
  private payloadReport(r: PayloadResult, via: Via): PublishReport {
    const { metrics, logger } = this.deps;
    const rejected: PublishReport['rejected'] = [];
    for (const x of r.rejected) {
      if (x.error) logger.error({ err: x.error, ref: x.ref }, 'decoding a message failed; rejected as internal');
      metrics.rejected.inc({ reason: x.reason, via });
      rejected.push({ ref: x.ref, reason: x.reason, message: x.message });
    }
    // A payload's stored records are all of one kind.
    if (r.committed.length) this.counter('accepted', r.committed[0]!.kind, via).inc(r.committed.length);
    for (const d of r.duplicates) this.counter('duplicates', d.kind, via).inc();
    return { accepted: r.committed.length, duplicate: r.duplicates.length, rejected };
  }

  /**
   * Decoding never throws on input by design; should a bug make it throw, the message is answered
   * as rejected (`internal`), counted and logged — the connection and everyone else carry on.
   */
  private guard(decode: () => Decoded, ref: string): Decoded {
    try {
      return decode();
    } catch (err) {
      this.deps.logger.error({ err, ref }, 'decoding a message failed; rejected as internal');
      return { records: [], files: [], rejected: [{ ref, reason: 'internal', message: 'the gateway could not process this message' }] };
    }
  }

  /** Already-parsed values (HTTP JSON bodies): one or many check-ins, readings or statuses. */
  ingestValues(channel: 'checkin' | 'telemetry' | 'status', values: unknown[], o: { siteId: string; deviceId: string; via: Via }): Promise<IngestReport> {
    const origin = this.origin(o.siteId, o.deviceId);
    const decoded = this.guard(() => {
      const d: Decoded = { records: [], files: [], rejected: [] };
      values.forEach((v, i) => validateValue(channel, v, origin, d, `#${i}`));
      return d;
    }, `${o.deviceId}/${channel}`);
    return this.store(decoded, o.via);
  }

  /**
   * Wage payments (JSON items or CSV rows). Card numbers become keyed hashes + last 4 here,
   * before anything is stored or logged; a row for a worker not registered at the site is refused.
   */
  ingestWagePayments(siteId: string, rows: { value: unknown; row: number }[]): Promise<IngestReport> {
    const origin = this.origin(siteId, 'payroll');
    const decoded: Decoded = { records: [], files: [], rejected: [] };
    const rowOf = new Map<LedgerRecord | Rejection, number>();
    for (const { value, row } of rows) {
      const ref = value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'string' ? String((value as { id: string }).id).slice(0, 128) : `row ${row}`;
      const v = validateWagePayment(value, origin, ref);
      if (!v.ok) {
        decoded.rejected.push(v.rejection);
        rowOf.set(v.rejection, row);
        continue;
      }
      const p = v.payment;
      if (!this.deps.registry.worker(siteId, p.workerId)) {
        const r: Rejection = { ref, reason: 'unknown_worker', message: `worker ${p.workerId} is not registered at site ${siteId}` };
        decoded.rejected.push(r);
        rowOf.set(r, row);
        continue;
      }
      const card = this.deps.registry.cardFingerprint(p.card);
      const rec: LedgerRecord = {
        siteId, deviceId: 'payroll', kind: 'wage_payment', msgId: p.id, dedupeKey: `payroll:${siteId}/${p.id}`,
        ts: v.paidAt, receivedAt: origin.receivedAt,
        body: { workerId: p.workerId, period: p.period, amount: p.amount, status: p.status, cardHash: card.hash, cardLast4: card.last4 },
      };
      decoded.records.push(rec);
      rowOf.set(rec, row);
    }
    return this.store(decoded, 'http', rowOf);
  }

  /**
   * Label children cached, by name, channel and kind: prom-client hashes a label object on every
   * inc() otherwise, and a joined string key would be built per message (hot path).
   */
  private readonly counters = { accepted: { mqtt: byKind(), http: byKind() }, duplicates: { mqtt: byKind(), http: byKind() } };
  private counter(name: 'accepted' | 'duplicates', kind: string, via: Via): Counter {
    const cache = this.counters[name][via];
    let c = cache.get(kind);
    if (!c) cache.set(kind, (c = this.deps.metrics[name].labels({ kind, via })));
    return c;
  }

  private origin(siteId: string, deviceId: string): Origin {
    const now = this.deps.now();
    return { siteId, deviceId, receivedAt: now, now };
  }

  private async store(d: Decoded, via: Via, rowOf?: Map<LedgerRecord | Rejection, number>): Promise<IngestReport> {
    const { metrics } = this.deps;
    const results: Outcome[] = [];
    for (const r of d.rejected) {
      metrics.rejected.inc({ reason: r.reason, via });
      results.push({ ref: r.ref, outcome: 'rejected', reason: r.reason, message: r.message, ...(rowOf?.has(r) ? { row: rowOf.get(r)! } : {}) });
    }
    const stored = await this.deps.ledger.appendMany(d.records, d.files);
    let accepted = 0, duplicate = 0;
    stored.forEach((s, i) => {
      const rec = d.records[i]!;
      const row = rowOf?.get(rec);
      if (s.seq === null) {
        duplicate++;
        this.counter('duplicates', rec.kind, via).inc();
        results.push({ ref: rec.msgId, outcome: 'duplicate', ...(row !== undefined ? { row } : {}) });
      } else {
        accepted++;
        this.counter('accepted', rec.kind, via).inc();
        results.push({ ref: rec.msgId, outcome: 'accepted', seq: s.seq, ...(row !== undefined ? { row } : {}) });
      }
    });
    if (rowOf) results.sort((a, b) => (a.row ?? 0) - (b.row ?? 0));
    return { accepted, duplicate, rejected: d.rejected.length, results };
  }
}
