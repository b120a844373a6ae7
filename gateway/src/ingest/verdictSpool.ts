import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';

/**
 * Per-row verdicts of a large upload, spooled to a temporary file as each chunk commits and
 * streamed back once the request body has been read in full: memory stays bounded however many
 * rows there are, and a client that only reads the answer after sending everything (most do)
 * cannot deadlock against a server that is still writing it.
 */
export class VerdictSpool {
  private constructor(private readonly dir: string, private readonly file: string, private readonly out: fs.WriteStream) {}

  static async open(parent = os.tmpdir()): Promise<VerdictSpool> {
    const dir = await fs.promises.mkdtemp(path.join(parent, 'sitegate-verdicts-'));
    const file = path.join(dir, 'verdicts.ndjson');
    return new VerdictSpool(dir, file, fs.createWriteStream(file, { mode: 0o600 }));
  }

  /** Appends one NDJSON line per item, waiting for the disk when the buffer is full. */
  async write(items: readonly object[]): Promise<void> {
    if (!items.length) return;
    if (!this.out.write(items.map((i) => JSON.stringify(i)).join('\n') + '\n')) {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error) => {
          this.out.off('drain', done);
          this.out.off('error', done);
          if (err) reject(err);
          else resolve();
        };
        this.out.on('drain', done);
        this.out.on('error', done);
      });
    }
  }

  /** Closes the spool and returns it as a stream; the file is removed once the stream closes. */
  async finish(): Promise<Readable> {
    await new Promise<void>((resolve, reject) => this.out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const stream = fs.createReadStream(this.file);
    stream.on('close', () => void this.discard());
    return stream;
  }

  async discard(): Promise<void> {
    this.out.destroy();
    await fs.promises.rm(this.dir, { recursive: true, force: true });
  }
}
