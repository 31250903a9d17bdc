// Driver for this store's native protocol: raw pipelined frames, request id = slot + 1, so an
// answer finds its slot without a map. Writes carry (clientId, seq) lanes like KvsClient (one lane
// per slot, at most one write in flight per lane), so the server does the session bookkeeping a
// real client causes; `sessions: false` sends clientId 0 (no exactly-once record).
import { randomBytes } from 'node:crypto';
import { keyRoutes, type DoneFn, type Driver, type DriverOptions } from '../load/driver.ts';
import { coalescer } from '../load/out-slab.ts';
import { RoundRobin, TcpConn } from '../load/tcp-conn.ts';
import { OP_WRITE, type OpKind } from '../load/workload.ts';
import { FrameScanner, RESP_ERROR, RESP_VALUE, getFrameBytes, putFrameBytes, writeGet, writePut, type FrameSink } from './native-codec.ts';

interface Route {
  write: RoundRobin<TcpConn>;
  read: RoundRobin<TcpConn>;
}

export class NativeDriver implements Driver, FrameSink {
  onDone: DoneFn = () => {};
  private readonly keyRoute: Uint8Array;
  misses = 0;
  lastError = '';
  private readonly conns: TcpConn[] = [];
  private readonly dirty: TcpConn[] = [];
  private routes: Route[] = [];
  private readonly seq: Float64Array;
  private readonly clientHi: number;
  private readonly laneBase: number;
  private readonly flushSoon = coalescer(() => this.flush());

  constructor(private readonly o: DriverOptions) {
    this.keyRoute = keyRoutes(o.target, o.space.count);
    this.seq = new Float64Array(o.slots);
    // A random high half per process, the worker and slot in the low half: lanes never collide.
    this.clientHi = o.sessions ? (randomBytes(4).readUInt32BE(0) | 1) >>> 0 : 0;
    this.laneBase = o.sessions ? (o.worker << 20) >>> 0 : 0;
  }

  async connect(): Promise<void> {
    const groups = this.o.target.groups ?? [{ write: this.o.target.write, read: this.o.target.read }];
    const byAddr = new Map<string, TcpConn[]>();
    const open = async (addr: string): Promise<TcpConn[]> => {
      let list = byAddr.get(addr);
      if (!list) {
        list = [];
        byAddr.set(addr, list);
        for (let i = 0; i < this.o.conns; i++) {
          const scanner = new FrameScanner();
          const conn = await TcpConn.open(addr, (chunk) => {
            try {
              scanner.push(chunk, this);
            } catch (e) {
              this.lastError = (e as Error).message;
              conn.close();
            }
          });
          list.push(conn);
          this.conns.push(conn);
        }
      }
      return list;
    };
    for (const g of groups) {
      const write = (await Promise.all(g.write.map(open))).flat();
      const read = (await Promise.all(g.read.map(open))).flat();
      this.routes.push({ write: new RoundRobin(write), read: new RoundRobin(read) });
    }
  }

  send(slot: number, op: OpKind, key: number): void {
    const s = this.o.space;
    // Several shard groups: the one owning the key (see DriverTarget.groups).
    const route = this.routes.length === 1 ? this.routes[0]! : this.routes[this.keyRoute[key]!]!;
    if (op === OP_WRITE) {
      const c = route.write.next();
      const p = c.out.reserve(putFrameBytes(s.keySize, s.valueSize));
      const lo = this.clientHi === 0 ? 0 : (this.laneBase + slot) >>> 0;
      const seq = this.clientHi === 0 ? 0 : ++this.seq[slot]!;
      c.out.pos = writePut(c.out.buf, p, slot + 1, this.clientHi, lo, seq, s.keys, s.keyOffset(key), s.keySize, s.values, s.valueOffset(key + seq), s.valueSize);
      this.mark(c);
    } else {
      const c = route.read.next();
      const p = c.out.reserve(getFrameBytes(s.keySize));
      c.out.pos = writeGet(c.out.buf, p, slot + 1, !this.o.linearizable, s.keys, s.keyOffset(key), s.keySize);
      this.mark(c);
    }
  }

  private mark(c: TcpConn): void {
    if (!c.dirty) {
      c.dirty = true;
      this.dirty.push(c);
    }
    this.flushSoon();
  }

  private flush(): void {
    for (const c of this.dirty) {
      c.dirty = false;
      if (c.closedError === null) c.out.flush();
      else this.lastError = c.closedError;
    }
    this.dirty.length = 0;
  }

  frame(type: number, requestId: number, buf: Buffer, start: number, end: number): void {
    if (type === RESP_ERROR) {
      const code = end - start >= 2 ? buf.readUInt16BE(start) : 0;
      const msgLen = end - start >= 4 ? buf.readUInt16BE(start + 2) : 0;
      this.lastError = `error ${code}: ${buf.toString('utf8', start + 4, Math.min(end, start + 4 + msgLen))}`;
      this.onDone(requestId - 1, false);
      return;
    }
    if (type === RESP_VALUE && buf[start] === 0) this.misses++;
    this.onDone(requestId - 1, true);
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.close();
  }
}
