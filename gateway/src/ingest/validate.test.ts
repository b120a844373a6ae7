import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeMessage } from './validate.ts';
import { isInboundChannel } from './topics.ts';

/**
 * Decoder cases as data (style.md §4): each folder of cases/ holds `topic` (the channel),
 * `payload.json` or `payload.txt` (the bytes a device sends) and `expected.json` (the records
 * and rejections it must become). Adding a case is adding a folder.
 */
const CASES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cases');
const NOW = Date.parse('2026-11-23T00:00:00Z');

describe('decodeMessage cases', () => {
  for (const name of fs.readdirSync(CASES).sort()) {
    it(name, () => {
      const dir = path.join(CASES, name);
      const channel = fs.readFileSync(path.join(dir, 'topic'), 'utf8').trim();
      if (!isInboundChannel(channel)) throw new Error(`bad channel ${channel}`);
      const file = fs.existsSync(path.join(dir, 'payload.json')) ? 'payload.json' : 'payload.txt';
      const payload = fs.readFileSync(path.join(dir, file));
      const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
      const out = decodeMessage(channel, payload, { siteId: 'S1', deviceId: 'D1', receivedAt: NOW, now: NOW }, `sites/S1/devices/D1/${channel}`);
      expect(out.rejected.map(({ ref, reason }) => ({ ref, reason }))).toEqual(expected.rejected);
      expect(out.records.map(({ kind, msgId, ts, body }) => ({ kind, msgId, ts, body }))).toEqual(expected.records);
      for (const r of out.records) {
        expect(r.siteId).toBe('S1');
        expect(r.dedupeKey).toBe(`D1/${r.msgId}`);
        expect(r.receivedAt).toBe(NOW);
      }
      for (const r of out.rejected) expect(r.message.length).toBeGreaterThan(5);
    });
  }
});

describe('check-in photos', () => {
  it('are replaced by their SHA-256 and kept as an evidence file', () => {
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
    const payload = Buffer.from(JSON.stringify({ id: 'c1', workerId: 'W1', ts: NOW - 1000, direction: 'in', method: 'face', photo: jpeg.toString('base64') }));
    const out = decodeMessage('checkin', payload, { siteId: 'S1', deviceId: 'D1', receivedAt: NOW, now: NOW }, 't');
    expect(out.records).toHaveLength(1);
    const body = out.records[0]!.body;
    expect(body.photo).toBeUndefined();
    expect(body.photoSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(out.files).toEqual([{ sha256: body.photoSha256, data: jpeg }]);
  });

  it('a snapshot is identified by its hash and timed by its arrival', () => {
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xdb]), Buffer.alloc(100, 7)]);
    const out = decodeMessage('snapshot', jpeg, { siteId: 'S1', deviceId: 'CAM1', receivedAt: NOW, now: NOW }, 't');
    expect(out.records[0]).toMatchObject({ kind: 'snapshot', ts: NOW, msgId: out.files[0]!.sha256 });
  });
});
