// One region instance appending to the audit chain as fast as it can, on its own thread
// (gateway/src/state/pg/pgState.test.ts races two of these on one database).
import { parentPort, workerData } from 'node:worker_threads';
import { PgStateStore } from '../../gateway/src/state/pg/pgState.ts';

const { url, dataDir, name, entries } = workerData as { url: string; dataDir: string; name: string; entries: number };
const store = await PgStateStore.open({ url, dataDir, now: () => 0, scryptN: 1024 });
for (let i = 0; i < entries; i++) store.audit.append(`race.${name}`, `${name}:${i}`, { i }, i);
store.close();
parentPort!.postMessage({ appended: entries });
