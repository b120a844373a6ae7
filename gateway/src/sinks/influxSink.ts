import type { StoredRecord } from '../ledger/types.ts';
import { toLines } from './influxLineProtocol.ts';
import type { DeviceKindOf } from './points.ts';
import type { Sink } from './sink.ts';

/**
 * What both InfluxDB sinks share: records become contract §4 points in line protocol; each sink
 * only says how one body of lines reaches its database (`send`) and how it is pinged.
 */
export abstract class InfluxSink implements Sink {
  abstract readonly name: string;

  protected constructor(private readonly deviceKind: DeviceKindOf = () => undefined) {}

  render(record: StoredRecord): string {
    return toLines([record], this.deviceKind).join('\n');
  }

  async write(records: StoredRecord[]): Promise<void> {
    const lines = toLines(records, this.deviceKind);
    if (lines.length > 0) await this.send(lines.join('\n'));
  }

  /** One request with these lines; resolves when the database confirmed them, or throws a SinkError. */
  protected abstract send(body: string): Promise<void>;
  abstract ping(): Promise<boolean>;
  abstract close(): Promise<void>;
}
