/**
 * The group-commit front of both ledgers (SQLite's writer thread, `ledger.ts`; PostgreSQL's writer
 * connection, `pg/pgLedger.ts`): what makes one commit cover many callers, and fail-stop.
 *
 * - Calls made while a group is being committed wait in `pending` and go together as the next
 *   group, whole calls up to `maxGroup` by weight (a call heavier than that still goes, alone).
 * - A group starts at the next turn of the event loop when the store is idle. With `burstGroup`,
 *   that much pending weight goes at once and may queue behind the group being committed, up to
 *   `maxInflight` groups (the store commits them in order).
 * - Each call is answered once: after its own group's commit (`settle`), or with the error that
 *   failed the store. Fail-stop: a failed group fails every call on the way and every later one.
 * - A caller's callback runs guarded: one that throws cannot keep the rest of its group unanswered.
 */
import type { Done, EvidenceFile } from './types.ts';

export interface GroupCall<R> {
  done: Done<R>;
}

export interface Group<C> {
  readonly id: number;
  readonly calls: C[];
  /** the calls' weights added up */
  readonly weight: number;
  /** evidence files handed in with the group's calls: written before the group commits */
  readonly files: EvidenceFile[];
}

export interface GroupCommitOptions<C> {
  /** Most weight in one group. */
  maxGroup: number;
  /** Pending weight that starts a group at once, even behind another (default: never). */
  burstGroup?: number;
  /** Groups handed to the store and not yet answered (default 1). */
  maxInflight?: number;
  /** A call's share of a group: its records, or an estimate of them. */
  weight(call: C): number;
  /** Commits a group, and answers later with `settle(group.id, …)` or `fail(…)`; a throw fails the store. */
  send(group: Group<C>): void;
  /** Told once, when the store fails. */
  onFatal?(err: Error): void;
}

/**
 * A caller's callback, run where a promise's reaction would have run: one that throws does not
 * keep the rest of the group from being answered, and its error surfaces as an uncaught one.
 */
export function settleCall<T>(done: Done<T>, err: Error | null, result?: T): void {
  try {
    done(err, result);
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}

export class GroupCommit<C extends GroupCall<never>> {
  private pending: C[] = [];
  private pendingWeight = 0;
  private pendingFiles: EvidenceFile[] = [];
  private readonly inflight = new Map<number, Group<C>>();
  private nextId = 1;
  private scheduled = false;
  private closed = false;
  private error: Error | null = null;
  private drainWaiters: (() => void)[] = [];
  private readonly burstGroup: number;
  private readonly maxInflight: number;

  constructor(private readonly o: GroupCommitOptions<C>) {
    this.burstGroup = o.burstGroup ?? Infinity;
    this.maxInflight = o.maxInflight ?? 1;
  }

  /** The error that failed the store, if it failed. */
  get failed(): Error | null {
    return this.error;
  }

  /** Why a call would be refused now (the store failed, or is closed), or null. */
  refusal(): Error | null {
    return this.error ?? (this.closed ? new Error('ledger is closed') : null);
  }

  /** Weight waiting for, or in, a commit. */
  get backlog(): number {
    let n = this.pendingWeight;
    for (const g of this.inflight.values()) n += g.weight;
    return n;
  }

  /** Queues a call (and its evidence files) for the next group, or refuses it at once. */
  submit(call: C, files?: EvidenceFile[]): void {
    const refused = this.refusal();
    if (refused) return settleCall(call.done as Done<unknown>, refused);
    if (files?.length) this.pendingFiles.push(...files);
    this.pending.push(call);
    this.pendingWeight += this.o.weight(call);
    if (this.pendingWeight >= this.burstGroup) this.flush();
    if (this.scheduled || this.inflight.size > 0 || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.pending.length === 0 || this.error) return;
    if (this.inflight.size > 0 && (this.inflight.size >= this.maxInflight || this.pendingWeight < this.burstGroup)) return;
    let n = 0, weight = 0;
    for (; n < this.pending.length; n++) {
      const w = this.o.weight(this.pending[n]!);
      if (n > 0 && weight + w > this.o.maxGroup) break;
      weight += w;
    }
    const group: Group<C> = { id: this.nextId++, calls: this.pending.splice(0, n), weight, files: this.pendingFiles };
    this.pendingWeight -= weight;
    this.pendingFiles = [];
    this.inflight.set(group.id, group);
    try {
      this.o.send(group);
    } catch (e) {
      this.fail(e as Error);
    }
  }

  /**
   * A group committed: the next one goes to the store before anyone downstream runs (durability
   * first), then `answer` answers the group's calls (with `settleCall`) and tells whoever listens.
   */
  settle(id: number, answer: (group: Group<C>) => void): void {
    const group = this.inflight.get(id);
    if (!group) return;
    this.inflight.delete(id);
    this.flush();
    answer(group);
    this.notifyDrained();
  }

  /** Fails the store: every call in a group or waiting hears `err`, and every later call too. */
  fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    for (const g of this.inflight.values()) for (const c of g.calls) settleCall(c.done as Done<unknown>, err);
    for (const c of this.pending) settleCall(c.done as Done<unknown>, err);
    this.inflight.clear();
    this.pending = [];
    this.pendingWeight = 0;
    this.notifyDrained();
    this.o.onFatal?.(err);
  }

  /** Resolves once nothing is waiting or in a commit (or the store failed). */
  drained(): Promise<void> {
    if ((!this.pending.length && !this.inflight.size) || this.error) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Waits until every call is answered, then refuses later ones. Closed in the same turn that finds
   * nothing left: a call made while the last group committed is committed too, never left behind.
   */
  async close(): Promise<void> {
    do await this.drained();
    while ((this.pending.length || this.inflight.size) && !this.error);
    this.closed = true;
  }

  private notifyDrained(): void {
    if (this.pending.length || this.inflight.size) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}

/** A call's promise: `submit` with a callback that resolves or rejects it. */
export function promised<R>(submit: (done: Done<R>) => void): Promise<R> {
  return new Promise((resolve, reject) => submit((err, r) => (err ? reject(err) : resolve(r!))));
}
