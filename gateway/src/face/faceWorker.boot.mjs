// Plain-JavaScript entry point for FacePool workers when the gateway runs from TypeScript sources.
//
// On Node 20 a worker thread does NOT inherit the parent's module customization hooks: under
// `npx tsx app.ts` the worker gets tsx's `--import …/loader.mjs` in its execArgv but still fails
// with ERR_UNKNOWN_FILE_EXTENSION for a .ts entry, and vitest (whose test processes have no Node
// loader at all) fails the same way, even with `execArgv: ['--import', 'tsx']`. Registering tsx
// from inside the worker works in both, so this shim does exactly that and then loads the real
// worker. See facePool.ts.
import { tsImport } from 'tsx/esm/api';

await tsImport('./faceWorker.ts', import.meta.url);
