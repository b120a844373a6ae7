import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/support/gateway.ts';
import { messages } from '../publish/deviceLink.ts';
import { Outbox, type NewEvent } from './outbox.ts';

const reading = (i: number): NewEvent => ({ deviceId: 'D', channel: 'telemetry', msgId: `r${i}`, payload: Buffer.from(JSON.stringify({ id: `r${i}`, ts: i, metrics: { pm10: i } })) });

describe('Outbox', () => {
  it('never hands out a sequence number at or below one already used, even after draining to empty', () => {
    const q = new Outbox(path.join(tempDir(), 'q.db'));
    q.put([reading(1), reading(2)]);
    const first = q.next('D', 0, 10);
    q.done(first.map((e) => e.seq));
    q.put([reading(3)]);
    // A link's cursor stays at the last sequence it sent: the new event must come after it.
    expect(q.next('D', first[1]!.seq, 10).map((e) => e.msgId)).toEqual(['r3']);
    q.close();
  });

  it("adopts the stdin bridge's outbox (agent ≤ 0.1) so an upgrade keeps its backlog", () => {
    const file = path.join(tempDir(), 'old.db');
    const db = new Database(file);
    db.exec('CREATE TABLE outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL)');
    db.prepare('INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)').run('sites/S1/devices/FT-1/checkin', '{"id":"c1"}', 5);
    db.prepare('INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)').run('sites/S1/devices/CAM/snapshot', `b64:${Buffer.from([0xff, 0xd8, 0xff]).toString('base64')}`, 6);
    db.close();
    const q = new Outbox(file);
    expect(q.next('FT-1', 0, 10).map((e) => [e.channel, e.msgId, e.payload.toString(), e.createdAt])).toEqual([['checkin', 'c1', '{"id":"c1"}', 5]]);
    expect([...q.next('CAM', 0, 10)[0]!.payload]).toEqual([0xff, 0xd8, 0xff]);
    q.close();
  });

  it('sends runs of readings as contract batches (≤ 1000) and everything else alone, in order', () => {
    const q = new Outbox(path.join(tempDir(), 'q.db'));
    q.put([...Array.from({ length: 1500 }, (_, i) => reading(i)), { deviceId: 'D', channel: 'checkin', msgId: 'c', payload: Buffer.from('{"id":"c"}') }, reading(2000)]);
    const out = [...messages(q.next('D', 0, 5000))];
    expect(out.map((m) => [m.channel, m.seqs.length])).toEqual([['telemetry', 1000], ['telemetry', 500], ['checkin', 1], ['telemetry', 1]]);
    expect(JSON.parse(out[0]!.body.toString()).batch).toHaveLength(1000);
    expect(JSON.parse(out[3]!.body.toString())).toMatchObject({ id: 'r2000' });
    q.close();
  });
});
