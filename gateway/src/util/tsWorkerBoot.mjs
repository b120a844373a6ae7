// Boots a TypeScript worker thread. Worker threads do not inherit tsx's loader (neither under
// `tsx` nor under vitest), so a plain-JS entry registers tsx for this thread and imports the
// TypeScript module named in workerData.__entry.
import { workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

await tsImport(workerData.__entry, import.meta.url);
