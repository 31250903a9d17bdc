// Shared driver for gRPC key-value services (etcd's KV, this store's protos.KV): unary calls over
// one HTTP/2 connection per endpoint and `conns`. grpc-js allocates per call whatever we do; what
// we avoid is ours: one completion callback per slot, built once, and key/value buffers built once.
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { keyRoutes, type DoneFn, type Driver, type DriverOptions } from '../load/driver.ts';
import { RoundRobin } from '../load/tcp-conn.ts';
import { OP_WRITE, type OpKind } from '../load/workload.ts';

export type UnaryCb = (err: grpc.ServiceError | null, res?: unknown) => void;

/** How one service maps onto put/get. */
export interface GrpcShape {
  protoFile: string;
  /** e.g. "etcdserverpb.KV" */
  service: string;
  /** Keys and values are proto3 strings (else bytes): built once as strings, not per call. */
  strings: boolean;
  put(client: grpc.Client, key: Buffer | string, value: Buffer | string, cb: UnaryCb): void;
  get(client: grpc.Client, key: Buffer | string, linearizable: boolean, cb: UnaryCb): void;
  /** True when a get's response says the key does not exist. */
  isMiss(res: unknown): boolean;
  /** A status code that means "no such key" rather than a failure. */
  missCode?: grpc.status;
}

type ClientCtor = new (address: string, creds: grpc.ChannelCredentials, options?: object) => grpc.Client;

function serviceCtor(protoFile: string, service: string): ClientCtor {
  const def = loader.loadSync(protoFile, { keepCase: true, longs: String, enums: String, defaults: false });
  let node: unknown = grpc.loadPackageDefinition(def);
  for (const part of service.split('.')) node = (node as Record<string, unknown>)[part];
  if (typeof node !== 'function') throw new Error(`${service} not found in ${protoFile}`);
  return node as ClientCtor;
}

export class GrpcDriver implements Driver {
  onDone: DoneFn = () => {};
  private readonly keyRoute: Uint8Array;
  misses = 0;
  lastError = '';
  private readonly clients: grpc.Client[] = [];
  private routes: { write: RoundRobin<grpc.Client>; read: RoundRobin<grpc.Client> }[] = [];
  private keys: (Buffer | string)[];
  private values: (Buffer | string)[];
  private readonly writeCbs: UnaryCb[] = [];
  private readonly readCbs: UnaryCb[] = [];

  constructor(
    private readonly o: DriverOptions,
    private readonly shape: GrpcShape,
  ) {
    this.keyRoute = keyRoutes(o.target, o.space.count);
    this.keys = o.space.keyViews();
    this.values = o.space.valueViews();
    if (shape.strings) {
      this.keys = this.keys.map((k) => k.toString('latin1'));
      this.values = this.values.map((v) => v.toString('latin1'));
    }
    for (let s = 0; s < o.slots; s++) {
      this.writeCbs.push((err) => this.done(s, err, undefined, false));
      this.readCbs.push((err, res) => this.done(s, err, res, true));
    }
  }

  private done(slot: number, err: grpc.ServiceError | null, res: unknown, read: boolean): void {
    if (err && err.code === this.shape.missCode && read) {
      this.misses++;
      this.onDone(slot, true);
      return;
    }
    if (err) {
      this.lastError = err.message;
      this.onDone(slot, false);
      return;
    }
    if (read && this.shape.isMiss(res)) this.misses++;
    this.onDone(slot, true);
  }

  async connect(): Promise<void> {
    const Ctor = serviceCtor(this.shape.protoFile, this.shape.service);
    const byAddr = new Map<string, grpc.Client[]>();
    const open = async (addr: string): Promise<grpc.Client[]> => {
      let list = byAddr.get(addr);
      if (list) return list;
      list = [];
      byAddr.set(addr, list);
      for (let i = 0; i < this.o.conns; i++) {
        // A local subchannel pool gives each client its own HTTP/2 connection.
        const c = new Ctor(addr, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': 64 << 20 });
        await new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 10_000, (e) => (e ? reject(new Error(`${addr}: ${e.message}`)) : resolve())));
        list.push(c);
        this.clients.push(c);
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
    const route = this.routes.length === 1 ? this.routes[0]! : this.routes[this.keyRoute[key]!]!;
    if (op === OP_WRITE) this.shape.put(route.write.next(), this.keys[key]!, this.values[(key + slot) % this.values.length]!, this.writeCbs[slot]!);
    else this.shape.get(route.read.next(), this.keys[key]!, this.o.linearizable, this.readCbs[slot]!);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
  }
}
