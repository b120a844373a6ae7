import Database from 'better-sqlite3';

export type Channel = 'checkin' | 'telemetry' | 'snapshot' | 'command-results';

export interface NewEvent {
  deviceId: string;
  channel: Channel;
  /** The source's stable id (a snapshot's is its SHA-256): the gateway dedupes on it. */
  msgId: string;
  payload: Buffer;
}

export interface QueuedEvent extends NewEvent {
  seq: number;
  createdAt: number;
}

export type PutResult = { ok: true } | { ok: false; reason: 'queue_full'; message: string };

/** Per-row overhead beyond the payload (keys, ids, b-tree cell): keeps the bound honest for small readings. */
const ROW_OVERHEAD = 64;

/**
 * The agent's store-and-forward queue (SQLite, WAL, fsync per commit). An event is here before its
 * source is answered and leaves only when the gateway PUBACKed it (MQTT-4.3.2: the sender keeps a
 * QoS 1 message until PUBACK), so an outage, a crash or a reboot loses nothing.
 *
 * Bounded: beyond `maxBytes`, telemetry and snapshots are refused at the source (`queue_full`),
 * check-ins are always taken; a worker's attendance is evidence of wages, a reading is one
 * sample among many. The file does not shrink after a drain: freed pages are reused, so the disk
 * used stays near the largest backlog, which the bound limits.
 */
export class Outbox {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly byDevice: Database.Statement;
  private readonly upsertMeta: Database.Statement;
  private bytes = 0;
  private count = 0;

  constructor(file: string, readonly maxBytes = Infinity, private readonly now: () => number = () => Date.now()) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    migrate(this.db);
    this.insert = this.db.prepare('INSERT INTO events (device, channel, msg_id, payload, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    this.remove = this.db.prepare('DELETE FROM events WHERE seq = ? RETURNING bytes');
    this.byDevice = this.db.prepare('SELECT seq, device AS deviceId, channel, msg_id AS msgId, payload, created_at AS createdAt FROM events WHERE device = ? AND seq > ? ORDER BY seq LIMIT ?');
    this.upsertMeta = this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    const t = this.db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM events').get() as { n: number; b: number };
    this.count = t.n;
    this.bytes = t.b;
  }

  /** Stores the events in one transaction, all or none (see the class comment for the bound). */
  put(events: NewEvent[]): PutResult {
    const size = events.reduce((s, e) => s + e.payload.length + ROW_OVERHEAD, 0);
    if (events.some((e) => e.channel === 'telemetry' || e.channel === 'snapshot') && this.bytes + size > this.maxBytes) {
      return { ok: false, reason: 'queue_full', message: `queue holds ${this.bytes} of ${this.maxBytes} bytes: telemetry and snapshots are refused until it drains` };
    }
    const at = this.now();
    this.db.transaction(() => {
      for (const e of events) this.insert.run(e.deviceId, e.channel, e.msgId, e.payload, e.payload.length + ROW_OVERHEAD, at);
    })();
    this.bytes += size;
    this.count += events.length;
    return { ok: true };
  }

  /** The oldest `limit` events of a device after `afterSeq`, in the order they were stored. */
  next(deviceId: string, afterSeq: number, limit: number): QueuedEvent[] {
    return this.byDevice.all(deviceId, afterSeq, limit) as QueuedEvent[];
  }

  /** Forgets events the gateway acknowledged (one transaction for a batch, with the publish time). */
  done(seqs: number[], at = this.now()): void {
    this.db.transaction(() => {
      this.setMeta('last_publish_at', String(at));
      for (const seq of seqs) {
        const row = this.remove.get(seq) as { bytes: number } | undefined;
        if (row) { this.bytes -= row.bytes; this.count -= 1; }
      }
    })();
  }

  get depth(): number { return this.count; }
  get usedBytes(): number { return this.bytes; }

  depthOf(deviceId: string): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM events WHERE device = ?').get(deviceId) as { n: number }).n;
  }

  /** When the oldest event still waiting was stored (agent clock), undefined when empty. */
  oldestCreatedAt(): number | undefined {
    const r = this.db.prepare('SELECT created_at AS t FROM events ORDER BY seq LIMIT 1').get() as { t: number } | undefined;
    return r?.t;
  }

  byChannel(): Record<string, number> {
    const rows = this.db.prepare('SELECT channel, COUNT(*) AS n FROM events GROUP BY channel').all() as { channel: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.channel, r.n]));
  }

  /** The result of a command already executed (a command the gateway sends again must not act twice). */
  commandResult(commandId: string): { ok: boolean; message?: string } | undefined {
    const r = this.db.prepare('SELECT ok, message FROM commands_done WHERE command_id = ?').get(commandId) as { ok: number; message: string | null } | undefined;
    return r ? { ok: r.ok === 1, ...(r.message !== null ? { message: r.message } : {}) } : undefined;
  }

  /** Records a command's result and queues its answer in one transaction: answered once, never lost. */
  putCommandResult(deviceId: string, commandId: string, result: { ok: boolean; message?: string }, payload: Buffer): void {
    const at = this.now();
    this.db.transaction(() => {
      this.db.prepare('INSERT OR IGNORE INTO commands_done (command_id, device, ok, message, at) VALUES (?, ?, ?, ?, ?)')
        .run(commandId, deviceId, result.ok ? 1 : 0, result.message ?? null, at);
      // A command lives at most 7 days at the gateway (MAX_COMMAND_TTL_S): older ones cannot come again.
      this.db.prepare('DELETE FROM commands_done WHERE at < ?').run(at - 8 * 86_400_000);
      this.insert.run(deviceId, 'command-results', commandId, payload, payload.length + ROW_OVERHEAD, at);
    })();
    this.bytes += payload.length + ROW_OVERHEAD;
    this.count += 1;
  }

  /** Small durable facts for `sitegate-agent status` when the agent is not running (last publish). */
  setMeta(key: string, value: string): void {
    this.upsertMeta.run(key, value);
  }

  meta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  close(): void {
    this.db.close();
  }
}

/**
 * Numbered schema steps (PRAGMA user_version), one transaction each. Step 2 adopts the outbox of
 * the stdin bridge (agent ≤ 0.1: topic + text payload, snapshots as `b64:`), so an agent upgraded
 * with a backlog still delivers it. AUTOINCREMENT: a drained queue must not hand out a sequence
 * number at or below a link's cursor (plain rowids restart at 1 on an empty table).
 */
function migrate(db: Database.Database): void {
  const steps: ((db: Database.Database) => void)[] = [
    (d) => d.exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, channel TEXT NOT NULL,
      msg_id TEXT NOT NULL, payload BLOB NOT NULL, bytes INTEGER NOT NULL, created_at INTEGER NOT NULL);
      CREATE INDEX events_device ON events (device, seq);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`),
    (d) => {
      const old = d.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").get();
      if (!old) return;
      const ins = d.prepare('INSERT INTO events (device, channel, msg_id, payload, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)');
      for (const r of d.prepare('SELECT topic, payload, created_at FROM outbox ORDER BY seq').all() as { topic: string; payload: string; created_at: number }[]) {
        const [, , , device = '', channel = ''] = r.topic.split('/');
        const body = r.payload.startsWith('b64:') ? Buffer.from(r.payload.slice(4), 'base64') : Buffer.from(r.payload);
        let id = '';
        try { id = String(JSON.parse(r.payload).id ?? ''); } catch { /* a snapshot: identified by its hash at the gateway */ }
        ins.run(device, channel, id, body, body.length + ROW_OVERHEAD, r.created_at);
      }
      d.exec('DROP TABLE outbox');
    },
    // Commands executed (contract §7), so a command delivered again is answered, not acted on twice.
    (d) => d.exec('CREATE TABLE commands_done (command_id TEXT PRIMARY KEY, device TEXT NOT NULL, ok INTEGER NOT NULL, message TEXT, at INTEGER NOT NULL)'),
  ];
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > steps.length) throw new Error(`outbox schema ${version} is newer than this agent (${steps.length}): upgrade the agent`);
  for (let v = version; v < steps.length; v++) {
    db.transaction(() => { steps[v]!(db); db.pragma(`user_version = ${v + 1}`); })();
  }
}
