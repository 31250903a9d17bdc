// Driver for RESP servers (Redis, and this store's RESP door): replies come back in order per
// connection, so each connection keeps a ring of the slots it is waiting for.
import { keyRoutes, type DoneFn, type Driver, type DriverOptions } from '../load/driver.ts';
import { coalescer } from '../load/out-slab.ts';
import { RoundRobin, TcpConn } from '../load/tcp-conn.ts';
import { OP_WRITE, type OpKind } from '../load/workload.ts';
import { REPLY_ERROR, REPLY_NIL, ReplyScanner, RespTemplates, writeGetCmd, writeSet, type ReplySink } from './resp-codec.ts';

class SlotRing {
  private readonly ring: Int32Array;
  private head = 0;
  private tail = 0;
  constructor(capacity: number) {
    this.ring = new Int32Array(capacity + 1);
  }
  push(slot: number): void {
    this.ring[this.tail] = slot;
    this.tail = this.tail + 1 === this.ring.length ? 0 : this.tail + 1;
  }
  shift(): number {
    if (this.head === this.tail) return -1;
    const s = this.ring[this.head]!;
    this.head = this.head + 1 === this.ring.length ? 0 : this.head + 1;
    return s;
  }
}

interface RespConn {
  tcp: TcpConn;
  waiting: SlotRing;
}

export class RespDriver implements Driver {
  onDone: DoneFn = () => {};
  private readonly keyRoute: Uint8Array;
  misses = 0;
  lastError = '';
  private readonly conns: RespConn[] = [];
  private readonly dirty: RespConn[] = [];
  private routes: { write: RoundRobin<RespConn>; read: RoundRobin<RespConn> }[] = [];
  private readonly t: RespTemplates;
  private readonly flushSoon = coalescer(() => this.flush());

  constructor(private readonly o: DriverOptions) {
    this.keyRoute = keyRoutes(o.target, o.space.count);
    this.t = new RespTemplates(o.space.keySize, o.space.valueSize);
  }

  async connect(): Promise<void> {
    const byAddr = new Map<string, RespConn[]>();
    const open = async (addr: string): Promise<RespConn[]> => {
      let list = byAddr.get(addr);
      if (list) return list;
      list = [];
      byAddr.set(addr, list);
      for (let i = 0; i < this.o.conns; i++) {
        const scanner = new ReplyScanner();
        const waiting = new SlotRing(this.o.slots);
        const sink: ReplySink = {
          reply: (kind, text) => {
            const slot = waiting.shift();
            if (slot < 0) throw new Error('reply without a request');
            if (kind === REPLY_ERROR) this.lastError = text;
            else if (kind === REPLY_NIL) this.misses++;
            this.onDone(slot, kind !== REPLY_ERROR);
          },
        };
        const tcp = await TcpConn.open(addr, (chunk) => {
          try {
            scanner.push(chunk, sink);
          } catch (e) {
            this.lastError = (e as Error).message;
            tcp.close();
          }
        });
        const c = { tcp, waiting };
        list.push(c);
        this.conns.push(c);
      }
      return list;
    };
    const groups = this.o.target.groups ?? [{ write: this.o.target.write, read: this.o.target.read }];
    for (const g of groups) {
      const write = (await Promise.all(g.write.map(open))).flat();
      const read = (await Promise.all(g.read.map(open))).flat();
      this.routes.push({ write: new RoundRobin(write), read: new RoundRobin(read) });
    }
  }

  send(slot: number, op: OpKind, key: number): void {
    const s = this.o.space;
    const route = this.routes.length === 1 ? this.routes[0]! : this.routes[this.keyRoute[key]!]!;
    const c = op === OP_WRITE ? route.write.next() : route.read.next();
    const out = c.tcp.out;
    if (op === OP_WRITE) {
      const p = out.reserve(this.t.setBytes);
      out.pos = writeSet(this.t, out.buf, p, s.keys, s.keyOffset(key), s.values, s.valueOffset(key + slot));
    } else {
      const p = out.reserve(this.t.getBytes);
      out.pos = writeGetCmd(this.t, out.buf, p, s.keys, s.keyOffset(key));
    }
    c.waiting.push(slot);
    if (!c.tcp.dirty) {
      c.tcp.dirty = true;
      this.dirty.push(c);
    }
    this.flushSoon();
  }

  private flush(): void {
    for (const c of this.dirty) {
      c.tcp.dirty = false;
      if (c.tcp.closedError === null) c.tcp.out.flush();
      else this.lastError = c.tcp.closedError;
    }
    this.dirty.length = 0;
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.tcp.close();
  }
}
