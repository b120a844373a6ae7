import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GENERATED, OUT_DIR, render } from './generate.ts';

describe('generated JSON Schema files', () => {
  it.each(Object.keys(GENERATED))('%s.schema.json is current (run `npm run schemas`)', (name) => {
    const file = path.join(OUT_DIR, `${name}.schema.json`);
    expect(fs.existsSync(file), `${file} missing`).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toBe(render(name, GENERATED[name]!));
  });

  it('has no stale file for a schema that no longer exists', () => {
    const names = fs.readdirSync(OUT_DIR).map((f) => f.replace(/\.schema\.json$/, ''));
    expect(names.sort()).toEqual(Object.keys(GENERATED).sort());
  });
});
