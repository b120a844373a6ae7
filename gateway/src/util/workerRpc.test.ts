import { describe, expect, it } from 'vitest';
import { RpcWorker } from './workerRpc.ts';

const ENTRY = new URL('./workerRpc.testWorker.ts', import.meta.url);
type Req = { op: 'echo' | 'throw' | 'hang' | 'crash' | 'slow' | 'bytes'; value?: number };
const start = (o: { data?: object; callTimeoutMs?: number } = {}) => RpcWorker.start<Req, unknown>(ENTRY, { name: 'test', ...o });

describe('worker RPC (real worker threads)', () => {
  it('answers each call once, by id, also when answers come back out of order', async () => {
    const w = await start();
    const slow = w.call({ op: 'slow', value: 1 });
    const fast = w.call({ op: 'echo', value: 2 });
    expect(await Promise.all([slow, fast])).toEqual([1, 2]);
    expect(await w.call({ op: 'bytes' })).toEqual(new Float32Array([1, 2, 3]));
    expect(w.inFlight).toBe(0);
    await w.close();
  });

  it('rejects the one call whose handler threw, and keeps serving', async () => {
    const w = await start();
    await expect(w.call({ op: 'throw', value: 7 })).rejects.toThrow('refused 7');
    expect(await w.call({ op: 'echo', value: 8 })).toBe(8);
    await w.close();
  });

  it('fails the start with the worker\'s reason when its init fails', async () => {
    await expect(start({ data: { failInit: true } })).rejects.toThrow(/could not start: no models here/);
  });

  it('a worker that dies rejects every call in flight and is reported once', async () => {
    const w = await start();
    const deaths: string[] = [];
    w.onDeath((e) => deaths.push(e.message));
    const waiting = w.call({ op: 'hang' });
    await expect(w.call({ op: 'crash' })).rejects.toThrow(/exited with code 3/);
    await expect(waiting).rejects.toThrow(/exited with code 3/);
    await expect(w.call({ op: 'echo', value: 1 })).rejects.toThrow(/exited/);
    expect(deaths).toEqual(['test worker exited with code 3']);
    expect(w.alive).toBe(false);
  });

  it('a call unanswered past its timeout kills the worker (a stuck native call cannot hold callers forever)', async () => {
    const w = await start({ callTimeoutMs: 100 });
    const deaths: string[] = [];
    w.onDeath((e) => deaths.push(e.message));
    await expect(w.call({ op: 'hang' })).rejects.toThrow(/did not answer within 0.1 s/);
    expect(deaths).toHaveLength(1);
  });

  it('close() lets the worker close its resources and exit, and is not reported as a death', async () => {
    const w = await start();
    const deaths: string[] = [];
    w.onDeath((e) => deaths.push(e.message));
    const exited = new Promise<number>((r) => w.worker.once('exit', r));
    await w.close();
    expect(await exited).toBe(0);
    expect(deaths).toEqual([]);
  });
});
