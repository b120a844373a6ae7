/** MQTT framing shared by the bench's raw-socket clients (loadgen.ts, faceLoad.ts). */

/** Splits a byte stream into MQTT control packets (type nibble, body, flags nibble). */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onPacket: (type: number, body: Buffer, flags: number) => void) {}
  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    for (;;) {
      if (this.buf.length - off < 2) break;
      let len = 0, mul = 1, i = off + 1, complete = false;
      for (; i < this.buf.length && i < off + 5; i++) {
        const b = this.buf[i]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) { complete = true; i++; break; }
      }
      if (!complete || this.buf.length - i < len) break;
      this.onPacket(this.buf[off]! >> 4, this.buf.subarray(i, i + len), this.buf[off]! & 0x0f);
      off = i + len;
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(off);
  }
}

/** MQTT's variable-length "remaining length" (MQTT 3.1.1 §2.2.3). */
export function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** A UTF-8 string with its 2-byte length prefix (MQTT 3.1.1 §1.5.3). */
export const mqttStr = (s: string) => {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};
