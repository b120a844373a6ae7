import type { RegisterSpec } from '../../../../schemas/src/agent.ts';

/** Registers a spec occupies: 16-bit types one, 32-bit types two. */
export const width = (s: RegisterSpec) => (s.type === 'uint16' || s.type === 'int16' ? 1 : 2);

/** Modbus allows at most 125 registers in one read (Modbus Application Protocol v1.1b3 §6.3). */
const MAX_READ = 125;

export interface ReadPlan { table: 'holding' | 'input'; start: number; length: number; specs: RegisterSpec[] }

/** Groups a register map into as few reads as the 125-register limit allows, per table. */
export function planReads(specs: RegisterSpec[]): ReadPlan[] {
  const plans: ReadPlan[] = [];
  for (const table of ['holding', 'input'] as const) {
    const sorted = specs.filter((s) => s.table === table).sort((a, b) => a.register - b.register);
    let cur: ReadPlan | undefined;
    for (const s of sorted) {
      const end = s.register + width(s);
      if (cur && end - cur.start <= MAX_READ) {
        cur.length = Math.max(cur.length, end - cur.start);
        cur.specs.push(s);
      } else {
        cur = { table, start: s.register, length: width(s), specs: [s] };
        plans.push(cur);
      }
    }
  }
  return plans;
}

/** One value from the registers of a read: raw × scale + offset, rounded off float noise. */
export function decode(spec: RegisterSpec, words: number[], start: number): number {
  const i = spec.register - start;
  const buf = Buffer.alloc(4);
  if (width(spec) === 1) {
    buf.writeUInt16BE(words[i]! & 0xffff, 0);
  } else {
    const [hi, lo] = spec.wordOrder === 'big' ? [words[i]!, words[i + 1]!] : [words[i + 1]!, words[i]!];
    buf.writeUInt16BE(hi & 0xffff, 0);
    buf.writeUInt16BE(lo & 0xffff, 2);
  }
  const raw = spec.type === 'uint16' ? buf.readUInt16BE(0)
    : spec.type === 'int16' ? buf.readInt16BE(0)
    : spec.type === 'uint32' ? buf.readUInt32BE(0)
    : spec.type === 'int32' ? buf.readInt32BE(0)
    // float32 carries about 7 significant digits; more would be the double's noise, not the sensor's.
    : Number(buf.readFloatBE(0).toPrecision(7));
  return Number((raw * spec.scale + spec.offset).toPrecision(12));
}
