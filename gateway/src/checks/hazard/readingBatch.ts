/**
 * Readings on their way to the hazard worker, packed into two Float64Arrays and a string table.
 * Posting an array of reading objects costs a structured clone per object (several µs per reading
 * on the main thread, which also runs MQTT and ingest); these buffers are transferred, not copied.
 */
export interface PackedReadings {
  /** Site ids, device ids and metric names, each once. */
  strings: string[];
  /** Per reading: seq, ts, site, device (indices into `strings`), intervalS (NaN: none), metric count. */
  head: Float64Array<ArrayBuffer>;
  /** Per metric value: name (index into `strings`), value. */
  values: Float64Array<ArrayBuffer>;
}

export interface UnpackedReading {
  seq: number;
  siteId: string;
  deviceId: string;
  ts: number;
  metrics: Record<string, number>;
  intervalS?: number;
}

const HEAD = 6;

export class ReadingBatch {
  private strings: string[] = [];
  private index = new Map<string, number>();
  private head: Float64Array<ArrayBuffer> = new Float64Array(HEAD * 64);
  private values: Float64Array<ArrayBuffer> = new Float64Array(2 * 512);
  private readings = 0;
  private nValues = 0;

  get length(): number {
    return this.readings;
  }

  add(seq: number, siteId: string, deviceId: string, ts: number, metrics: Record<string, number>, intervalS: number | undefined): void {
    if ((this.readings + 1) * HEAD > this.head.length) this.head = grow(this.head);
    const h = this.readings * HEAD;
    let n = 0;
    for (const name in metrics) {
      if (2 * (this.nValues + n + 1) > this.values.length) this.values = grow(this.values);
      const v = 2 * (this.nValues + n);
      this.values[v] = this.id(name);
      this.values[v + 1] = metrics[name]!;
      n++;
    }
    this.head[h] = seq;
    this.head[h + 1] = ts;
    this.head[h + 2] = this.id(siteId);
    this.head[h + 3] = this.id(deviceId);
    this.head[h + 4] = intervalS ?? NaN;
    this.head[h + 5] = n;
    this.nValues += n;
    this.readings++;
  }

  /** The packed batch (its buffers are to be transferred), and a fresh builder state. */
  take(): PackedReadings {
    const out = { strings: this.strings, head: this.head.slice(0, this.readings * HEAD), values: this.values.slice(0, this.nValues * 2) };
    this.strings = [];
    this.index = new Map();
    this.readings = 0;
    this.nValues = 0;
    return out;
  }

  private id(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.strings.length;
      this.strings.push(s);
      this.index.set(s, i);
    }
    return i;
  }
}

function grow(a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const b = new Float64Array(a.length * 2);
  b.set(a);
  return b;
}

export function* unpackReadings(p: PackedReadings): Generator<UnpackedReading> {
  let v = 0;
  for (let h = 0; h < p.head.length; h += HEAD) {
    const metrics: Record<string, number> = {};
    const n = p.head[h + 5]!;
    for (let k = 0; k < n; k++, v += 2) metrics[p.strings[p.values[v]!]!] = p.values[v + 1]!;
    const intervalS = p.head[h + 4]!;
    yield {
      seq: p.head[h]!, ts: p.head[h + 1]!, siteId: p.strings[p.head[h + 2]!]!, deviceId: p.strings[p.head[h + 3]!]!, metrics,
      ...(Number.isNaN(intervalS) ? {} : { intervalS }),
    };
  }
}
