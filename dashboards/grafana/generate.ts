/** `npm run dashboards`: writes the Grafana dashboards of dashboards.ts into dashboards/ (a test fails when they drift). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DASHBOARDS, render } from './dashboards.ts';

export const OUT_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dashboards');

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const [file, d] of Object.entries(DASHBOARDS)) {
    fs.writeFileSync(path.join(OUT_DIR, file), render(d));
    console.log(`wrote ${path.join(OUT_DIR, file)}`);
  }
}
