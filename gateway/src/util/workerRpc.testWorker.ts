/** The worker of workerRpc.test.ts: echoes, fails, hangs, crashes or is slow on request. */
import { serveRpc, Transfer } from './workerRpc.ts';

type Req = { op: 'echo' | 'throw' | 'hang' | 'crash' | 'slow' | 'bytes'; value?: number };
void serveRpc<Req, unknown, { failInit?: boolean }>({
  init(data) {
    if (data.failInit) throw new Error('no models here');
  },
  handle(req) {
    switch (req.op) {
      case 'echo': return req.value;
      case 'throw': throw new Error(`refused ${req.value}`);
      case 'hang': return new Promise(() => {});
      case 'crash': process.exit(3);
      // falls through (exit does not return)
      case 'slow': return new Promise((r) => setTimeout(() => r(req.value), 30));
      case 'bytes': { const b = new Float32Array([1, 2, 3]); return new Transfer(b, [b.buffer]); }
    }
  },
});
