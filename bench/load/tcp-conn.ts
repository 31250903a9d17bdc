// One benchmark TCP connection: connect with a deadline, an OutSlab for coalesced writes, and the
// incoming byte stream handed to the driver's parser.
import net from 'node:net';
import { OutSlab } from './out-slab.ts';

export function splitHostPort(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i).replace(/^\[|\]$/g, ''), Number(addr.slice(i + 1))];
}

export class TcpConn {
  readonly socket: net.Socket;
  readonly out: OutSlab;
  /** Set when the connection dropped; the driver reports it. */
  closedError: string | null = null;
  dirty = false;

  private constructor(
    readonly address: string,
    socket: net.Socket,
  ) {
    this.socket = socket;
    this.out = new OutSlab(socket);
  }

  static open(address: string, onData: (chunk: Buffer) => void, timeoutMs = 5000): Promise<TcpConn> {
    const [host, port] = splitHostPort(address);
    const socket = net.connect({ host, port, noDelay: true });
    const conn = new TcpConn(address, socket);
    socket.on('data', onData);
    socket.on('close', () => (conn.closedError ??= `connection to ${address} closed`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => socket.destroy(new Error(`connect to ${address} timed out`)), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.on('error', (e) => (conn.closedError = `${address}: ${e.message}`));
        resolve(conn);
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot reach ${address}: ${e.message}`));
      });
    });
  }

  close(): void {
    this.closedError ??= 'closed by the generator';
    this.socket.destroy();
  }
}

/** Round-robin pick from a fixed list without allocating. */
export class RoundRobin<T> {
  private i = 0;
  constructor(readonly items: T[]) {
    if (items.length === 0) throw new Error('no endpoints');
  }
  next(): T {
    const it = this.items[this.i]!;
    this.i = this.i + 1 === this.items.length ? 0 : this.i + 1;
    return it;
  }
}
