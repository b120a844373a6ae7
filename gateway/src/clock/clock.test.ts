import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sources = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
  const p = path.join(dir, e.name);
  return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
});

/**
 * Issue 9: a report, check or route that read the wall clock directly drifted with the calendar
 * (a test written in November failed in December). The calendar clock is injected
 * (clock/clock.ts → buildApp deps.now → every component); this keeps it the only source.
 */
describe('the calendar clock', () => {
  it('is read only through the injected Clock: no Date.now() or new Date() in gateway code', () => {
    const offenders = sources(SRC)
      .filter((f) => path.relative(SRC, f) !== path.join('clock', 'clock.ts'))
      .flatMap((f) => fs.readFileSync(f, 'utf8').split('\n').map((line, i) => ({ where: `${path.relative(SRC, f)}:${i + 1}`, line })))
      .filter(({ line }) => /\bDate\.now\b|new Date\(\s*\)/.test(line.replace(/\/\/.*$|\/\*.*?\*\/|^\s*\*.*$/g, '')))
      .map(({ where, line }) => `${where}: ${line.trim()}`);
    expect(offenders).toEqual([]);
  });
});
