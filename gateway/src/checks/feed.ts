import type { AnyLedgerStore, MaybePromise, RecordKind, StoredRecord } from '../ledger/types.ts';
import type { SiteShard } from '../region/shards.ts';

/** Records a step joined from several commits holds at most (a check's own `maxBatch` when it has one). */
const JOIN_MAX = 5000;

/** A step of records: `through` is the last ledger seq it covers (records of other kinds included). */
export interface Step {
  records: StoredRecord[];
  through: number;
}

/**
 * Where one check's steps come from (`pipeline.ts` drives it): committed records of the kinds it
 * reads, in commit order, held in a bounded queue; when the queue is full, at start, and after a
 * restore, the records are read back from the ledger instead (the ledger is the spool: nothing is
 * lost, memory stays bounded whatever the backlog). Records at or below `replayThrough` come in
 * steps of their own (a replay: their effects are committed already).
 *
 * A read-back answered later (PostgreSQL) lets commits in while it is out: they are kept (bounded
 * like the queue) and taken once the read says whether it caught up, so none falls between the
 * read and the queue. A read answered at once (SQLite) has nothing in between.
 */
export class StepFeed {
  private queue: Step[] = [];
  queued = 0;
  /** Highest seq queued or read back: the ledger holds everything after it that is not queued. */
  private tailSeq = 0;
  /** Records at or below this seq are a replay. */
  replayThrough = 0;
  readingBack = true;
  /** Commits that came while a read-back was out, and whether there were more than the queue may hold. */
  private arrived: StoredRecord[][] | undefined;
  private arrivedCount = 0;
  private arrivedOverflow = false;
  private readonly kinds: Set<string> | undefined;

  constructor(
    private readonly ledger: AnyLedgerStore,
    private readonly o: {
      kinds?: readonly RecordKind[]; maxQueued: number; readBack: number; maxBatch?: number;
      /** Region mode: this runner's shard; records of other sites are passed over, and not read back. */
      shard?: SiteShard;
    },
  ) {
    this.kinds = o.kinds ? new Set(o.kinds) : undefined;
  }

  /** Steps waiting (a full one and more: the check is behind). */
  get steps(): number {
    return this.queue.length;
  }

  get waiting(): boolean {
    return this.queue.length > 0 || this.readingBack;
  }

  /** Forgets what is queued and reads back from `from`; what is at or below `replayThrough` is a replay. */
  reset(from: number, replayThrough: number): void {
    this.queue = [];
    this.queued = 0;
    this.tailSeq = from;
    this.replayThrough = replayThrough;
    this.readingBack = true;
    this.arrived = undefined;
  }

  clear(): void {
    this.queue = [];
    this.queued = 0;
    this.arrived = undefined;
  }

  /**
   * Committed records. Returns 'queued' when the check has something new to do, the seq passed
   * over when they were all of other kinds and nothing waits (the caller's `busy` says whether a
   * step is in hand), else undefined.
   */
  take(records: StoredRecord[], busy: boolean): 'queued' | number | undefined {
    if (this.arrived !== undefined && records.length > 0) {
      this.arrivedCount += records.length;
      if (this.arrivedCount > this.o.maxQueued) this.arrivedOverflow = true;
      else this.arrived.push(records);
      return undefined;
    }
    if (this.readingBack || records.length === 0) return undefined;
    const through = records[records.length - 1]!.seq;
    if (through <= this.tailSeq) return undefined;
    const shard = this.o.shard;
    const mine = records.filter((r) => r.seq > this.tailSeq && (!this.kinds || this.kinds.has(r.kind)) && (!shard || shard.owns(r.siteId)));
    if (mine.length === 0) {
      // Nothing for this check: the last waiting step covers these seqs too.
      this.tailSeq = through;
      const last = this.queue[this.queue.length - 1];
      if (last) last.through = through;
      else if (busy) this.queue.push({ records: mine, through });
      else return through;
      return undefined;
    }
    if (this.queued + mine.length > this.o.maxQueued) {
      this.readingBack = true; // these and what follows are read back from the ledger after tailSeq
      return undefined;
    }
    this.tailSeq = through;
    // Joined to the step waiting last while it has room: the commits that come while a step is in
    // hand (or while the pipeline spaces its steps) make one step, not one each (issue 11).
    const last = this.queue[this.queue.length - 1];
    if (last !== undefined && last.records.length + mine.length <= (this.o.maxBatch ?? JOIN_MAX)) {
      for (const r of mine) last.records.push(r);
      last.through = through;
    } else {
      this.queue.push({ records: mine, through });
    }
    this.queued += mine.length;
    return 'queued';
  }

  /** Puts a step (or what a check left of one) back in front. */
  putBack(step: Step): void {
    this.queue.unshift(step);
    this.queued += step.records.length;
  }

  /**
   * The next step: the queue first (answered at once), else the ledger; at most `maxBatch` records,
   * a replay on its own.
   */
  next(): MaybePromise<Step | undefined> {
    const step = this.queue.shift();
    if (step !== undefined) {
      this.queued -= step.records.length;
      return this.cut(step);
    }
    if (!this.readingBack) return undefined;
    const read = this.readBack();
    if (!(read instanceof Promise)) return read === undefined ? undefined : this.cut(read);
    return read.then((s) => s === undefined ? undefined : this.cut(s));
  }

  private cut(step: Step): Step {
    const max = this.o.maxBatch;
    if (max !== undefined && step.records.length > max) {
      this.putBack({ records: step.records.slice(max), through: step.through });
      step = { records: step.records.slice(0, max), through: step.records[max - 1]!.seq };
    }
    if (step.through > this.replayThrough && (step.records[0]?.seq ?? Infinity) <= this.replayThrough) {
      this.putBack({ records: step.records.filter((r) => r.seq > this.replayThrough), through: step.through });
      step = { records: step.records.filter((r) => r.seq <= this.replayThrough), through: this.replayThrough };
    }
    return step;
  }

  private readBack(): MaybePromise<Step | undefined> {
    const lastSeq = this.ledger.lastSeq;
    const kinds = this.o.kinds as RecordKind[] | undefined;
    const read = this.ledger.readAfter(this.tailSeq, this.o.readBack, kinds, this.o.shard);
    if (!(read instanceof Promise)) return this.readBackStep(read, lastSeq);
    this.arrived = [];
    this.arrivedCount = 0;
    this.arrivedOverflow = false;
    return read.then((chunk) => {
      const arrived = this.arrived;
      const overflow = this.arrivedOverflow;
      this.arrived = undefined;
      if (arrived === undefined) return undefined; // cleared or reset while the read was out
      const step = this.readBackStep(chunk, lastSeq);
      if (overflow) this.readingBack = true; // more came than the queue may hold: read them back too
      else for (const records of arrived) this.take(records, true);
      return step;
    }, (err: unknown) => {
      this.arrived = undefined;
      throw err;
    });
  }

  private readBackStep(read: StoredRecord[], lastSeq: number): Step | undefined {
    const chunk = read.filter((r) => r.seq <= lastSeq);
    let through: number;
    if (chunk.length >= this.o.readBack) {
      through = chunk[chunk.length - 1]!.seq;
    } else {
      // Caught up: everything committed so far has been read; live records are queued again.
      through = lastSeq;
      this.readingBack = false;
    }
    if (through <= this.tailSeq) return undefined;
    this.tailSeq = through;
    const shard = this.o.shard;
    return { records: shard ? chunk.filter((r) => shard.owns(r.siteId)) : chunk, through };
  }
}
