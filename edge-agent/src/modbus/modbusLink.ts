import modbusSerial from 'modbus-serial';

// modbus-serial is CommonJS: under NodeNext its default import is module.exports, whose
// `default` property is the client class (its typings declare it as an ES default export).
const ModbusRTU = modbusSerial.default;
export type ModbusClient = InstanceType<typeof ModbusRTU>;

/** What a Modbus error says, as modbus-serial reports it. */
export interface ModbusError {
  message?: string;
  name?: string;
  errno?: string;
  /** Set when the device answered with an exception (the connection is sound). */
  modbusCode?: number;
}

export const isModbusTimeout = (err: ModbusError): boolean => err.name === 'TransactionTimedOutError' || err.errno === 'ETIMEDOUT';

/**
 * One Modbus TCP connection to a unit, opened when first needed, for the agent's sensors
 * (sources/modbus) and its actuators (actuators/modbus). After a timeout or a broken connection
 * the caller drops it: a late answer must not be taken for the next request's.
 */
export class ModbusLink {
  private client?: ModbusClient;

  constructor(private readonly cfg: { host: string; port: number; unitId: number; timeoutMs: number }) {}

  async connect(): Promise<ModbusClient> {
    if (this.client?.isOpen) return this.client;
    this.drop();
    const c = new ModbusRTU();
    c.setID(this.cfg.unitId);
    c.setTimeout(this.cfg.timeoutMs);
    await c.connectTCP(this.cfg.host, { port: this.cfg.port });
    this.client = c;
    return c;
  }

  drop(): void {
    const c = this.client;
    this.client = undefined;
    if (c?.isOpen) c.close(() => {});
  }
}
