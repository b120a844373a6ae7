import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent, type Agent } from '../edge-agent/src/agent.ts';
import { readEvidence } from '../gateway/src/ledger/evidence.ts';
import { agentConfig } from './support/agent.ts';
import { ADMIN_TOKEN, startGateway, type TestGateway } from './support/gateway.ts';

const FACES = path.resolve(import.meta.dirname, 'fixtures/faces');

/**
 * An HTTP camera (node:http serving fixture JPEGs): snapshots arrive at the gateway re-encoded
 * with their longest side capped; an unchanged frame is skipped and counted; a camera error and a
 * body that is not an image are counted. The frames are read from the gateway's ledger and evidence
 * store, and fetched back through the API (paging and rights: test/snapshots.e2e.test.ts).
 */
describe('HTTP camera → gateway snapshots', () => {
  let frame: { status: number; type: string; body: Buffer } = { status: 200, type: 'image/jpeg', body: fs.readFileSync(path.join(FACES, 'no_face_earth_from_iss.jpg')) };
  const camera = http.createServer((req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from('admin:cam-pass').toString('base64')}`) return void res.writeHead(401).end();
    res.writeHead(frame.status, { 'content-type': frame.type }).end(frame.body);
  });
  let g: TestGateway;
  let agent: Agent;
  beforeAll(async () => {
    await new Promise<void>((r) => camera.listen(0, '127.0.0.1', () => r()));
    g = await startGateway();
    const url = `http://127.0.0.1:${(camera.address() as { port: number }).port}/ISAPI/Streaming/channels/101/picture`;
    agent = buildAgent(agentConfig(g.mqttUrl, [
      { type: 'camera', deviceId: 'CAM-1', secret: await g.device('S1', 'CAM-1', 'camera'), url, username: 'admin', password: 'cam-pass', intervalS: 60, photo: { maxSide: 320, quality: 70 } },
    ]), { poll: false });
    await agent.start();
  });
  afterAll(async () => { await agent.stop(); await g.stop(); await new Promise((r) => camera.close(r)); });

  it('publishes changed frames resized, skips an unchanged one, counts camera errors', async () => {
    const cam = agent.inputs[0]!;
    await agent.gather(cam);
    await agent.gather(cam); // the same scene again
    frame = { ...frame, body: fs.readFileSync(path.join(FACES, 'peggy_whitson_1.jpg')) };
    await agent.gather(cam);
    frame = { status: 503, type: 'text/plain', body: Buffer.from('busy') };
    await agent.gather(cam);
    frame = { status: 200, type: 'image/jpeg', body: Buffer.from('<html>login required</html>') };
    await agent.gather(cam);
    await agent.drained();

    const src = agent.status().sources[0]!;
    expect(src).toMatchObject({ accepted: 2, counts: { unchanged: 1 }, errors: { camera_http: 1, camera_not_an_image: 1 } });
    await g.gw.ledger.drained();
    const snaps = (await g.gw.ledger.readAfter(0, 1000)).filter((r) => r.kind === 'snapshot' && r.deviceId === 'CAM-1');
    expect(snaps).toHaveLength(2);
    for (const s of snaps) {
      const bytes = readEvidence(g.gw.ledger.evidenceDir, s.msgId);
      expect(bytes).toBeTruthy();
      const meta = await sharp(bytes!).metadata();
      expect(meta.format).toBe('jpeg');
      expect(Math.max(meta.width!, meta.height!)).toBe(320);
    }
    // And back through the API (contract §6): listed by the camera, served as the bytes that arrived.
    const list = await g.api('GET', '/sites/S1/devices/CAM-1/snapshots');
    expect(list.status, list.text).toBe(200);
    expect(list.json.items.map((i: { sha256: string }) => i.sha256)).toEqual(snaps.map((s) => s.msgId));
    for (const s of snaps) {
      const res = await fetch(`${g.httpUrl}/api/v1/sites/S1/photos/${s.msgId}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      expect(Buffer.from(await res.arrayBuffer()).equals(readEvidence(g.gw.ledger.evidenceDir, s.msgId)!)).toBe(true);
    }
  });
});
