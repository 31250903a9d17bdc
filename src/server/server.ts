// One replica process: storage + Raft replica + peer links + the native door, wired together.
import net from 'node:net';
import { Replica } from '../replica/replica.ts';
import { planEntries, toResponse } from '../replica/state-machine.ts';
import { Router } from '../router/router.ts';
import { serveNativeClient } from '../protocol/native-door.ts';
import { FrameSocket } from '../transport/frame-socket.ts';
import { servePeerLink } from '../transport/inbound.ts';
import { Peers } from '../transport/peers.ts';
import type { Tap } from '../transport/tap.ts';
import { openStore, type Store } from '../storage/index.ts';
import { checkKeyValue } from '../storage/limits.ts';
import { FrameType, PROTOCOL_VERSION, decodeHello, type Frame, type Response } from '../wire/index.ts';
import type { Entry } from '../raft/types.ts';
import type { ServerConfig } from './config.ts';

export interface ServerOptions {
  tap?: Tap;
  log?: (line: string) => void;
}

export class KvsServer {
  readonly config: ServerConfig;
  readonly store: Store;
  readonly replica: Replica;
  readonly router: Router;
  readonly peers: Peers;
  private listener: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly log: (line: string) => void;
  readonly startedAt = Date.now();

  private constructor(config: ServerConfig, store: Store, opts: ServerOptions) {
    this.config = config;
    this.store = store;
    this.log = opts.log ?? ((l) => console.error(l));
    const self = { version: PROTOCOL_VERSION, replicaId: config.id, groupId: config.group };
    this.peers = new Peers(self, config.replicas.filter((r) => r.id !== config.id), opts.tap);
    const voters = config.replicas.map((r) => r.id).sort((a, b) => a - b);
    this.replica = new Replica({
      raft: {
        id: config.id,
        electionTicks: config.electionTicks,
        heartbeatTicks: config.heartbeatTicks,
        maxInflight: 256,
        maxMsgBytes: 1 << 20,
        snapshotChunkBytes: 512 << 10,
        snapshotWindow: 4,
        leaseReads: false,
        clockDriftTicks: 2,
      },
      snapshots: store.snapshots,
      persisted: store.load({ voters, learners: [] }),
      storage: { persist: (rd) => store.persist(rd), apply: (entries) => this.apply(entries) },
      send: (msgs) => this.peers.send(msgs),
      tickMs: config.tickMs,
      logTail: config.logTail,
      compactEvery: Math.max(config.logTail, 64),
      onSoftState: (s) => this.log(`replica ${config.id}: ${s.role}, term ${s.term}, leader ${s.leader || 'none'}`),
      onFatal: (e) => {
        this.log(`replica ${config.id}: fatal storage error, stopping: ${(e as Error).message}`);
        process.exitCode = 1;
        void this.close();
      },
    });
    this.router = new Router({
      replica: this.replica,
      reader: store,
      forwarder: {
        forward: (to, type, body, hops, timeoutMs) => this.peers.forward(to, type, body, hops, timeoutMs),
        addressOf: (id) => config.replicas.find((r) => r.id === id)?.address ?? '',
      },
      checkSizes: (key, value) => checkKeyValue(key, value, { maxKeyBytes: config.maxKeyBytes, maxValueBytes: config.maxValueBytes }),
      requestTimeoutMs: config.requestTimeoutMs,
      status: () => this.statusResponse(),
    });
  }

  static async start(config: ServerConfig, opts: ServerOptions = {}): Promise<KvsServer> {
    const store = await openStore({ path: config.dataDir });
    const server = new KvsServer(config, store, opts);
    await server.listen();
    server.replica.start();
    return server;
  }

  private async apply(entries: Entry[]): Promise<Map<number, Response>> {
    const plan = planEntries(entries);
    const results = await this.store.apply(entries.at(-1)!.index, plan.commands);
    const out = new Map<number, Response>();
    plan.origins.forEach((o, i) => {
      if (o) out.set(o.index, toResponse(o.request, results[i]!));
    });
    return out;
  }

  private listen(): Promise<void> {
    const [host, port] = splitHostPort(this.config.listen);
    const server = net.createServer((socket) => this.accept(socket));
    server.maxConnections = 10_000;
    this.listener = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** The first frame tells a replica link (HELLO) from a client connection. */
  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const conn = new FrameSocket(socket);
    // Until the first frame says otherwise, this is a client (so bad framing gets a client answer).
    serveNativeClient(conn, this.router);
    const asClient = conn.onFrame;
    conn.onFrame = (first: Frame) => {
      if (first.type !== FrameType.Hello) {
        conn.onFrame = asClient;
        asClient(first);
        return;
      }
      let hello;
      try {
        hello = decodeHello(first.body);
      } catch {
        socket.destroy();
        return;
      }
      conn.onFramingError = () => socket.destroy();
      servePeerLink(conn, hello, {
        self: { version: PROTOCOL_VERSION, replicaId: this.config.id, groupId: this.config.group },
        accept: (h) => (h.groupId === this.config.group ? undefined : `replica ${h.replicaId} is in group ${h.groupId}, this is group ${this.config.group}`),
        onRaft: (msgs) => {
          for (const m of msgs) this.replica.step(m);
        },
        execute: (req, raw) => this.router.execute(req, raw),
      });
    };
    conn.listen();
  }

  private statusResponse(): Response {
    const s = this.replica.node.status;
    const leader = s.leader;
    return {
      kind: 'status',
      info: {
        replicaId: this.config.id,
        groupId: this.config.group,
        role: s.role,
        term: s.term,
        leaderId: leader,
        leaderAddr: this.config.replicas.find((r) => r.id === leader)?.address ?? '',
        commitIndex: s.commit,
        appliedIndex: s.applied,
        epoch: 0,
      },
    };
  }

  /**
   * Graceful stop: a leader first hands leadership to the most caught-up voter (so clients see no
   * election timeout), then everything closes.
   */
  async shutdown(): Promise<void> {
    const st = this.replica.node.status;
    if (st.role === 'leader') {
      const target = st.progress.filter((p) => st.conf.voters.includes(p.id)).sort((a, b) => b.match - a.match)[0];
      if (target && this.replica.transferLeadership(target.id)) {
        const until = Date.now() + this.config.tickMs * this.config.electionTicks;
        while (Date.now() < until && this.replica.isLeader) await new Promise((r) => setTimeout(r, this.config.tickMs / 2));
        this.log(`replica ${this.config.id}: ${this.replica.isLeader ? 'transfer timed out' : `handed leadership to ${target.id}`}`);
      }
    }
    await this.close();
  }

  async close(): Promise<void> {
    this.replica.stop();
    this.peers.close();
    this.listener?.close();
    for (const s of this.sockets) s.destroy();
    await this.store.close();
  }
}

function splitHostPort(a: string): [string, number] {
  const i = a.lastIndexOf(':');
  return [a.slice(0, i).replace(/^\[|\]$/g, ''), Number(a.slice(i + 1))];
}
