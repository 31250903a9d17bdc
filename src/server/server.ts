// One replica process: storage + Raft replica + peer links + the native door, wired together.
import { statSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { listenAddress } from '../address/listen.ts';
import { Replica } from '../replica/replica.ts';
import { OWNERSHIP_META, StateMachine } from '../replica/state-machine.ts';
import { systemEnv } from '../replica/env.ts';
import { machineStorage } from '../replica/machine-storage.ts';
import { Router } from '../router/router.ts';
import type { ConfigWatcher } from '../cluster/config-watcher.ts';
import { sharedPlacementWatcher } from '../client/placement-watcher.ts';
import { KvsClient } from '../client/client.ts';
import { GroupConnections } from '../router/groups.ts';
import { CONFIG_KEY_BYTES, PlacementFront } from '../router/placement-front.ts';
import { attemptMsFor } from '../cluster/responsiveness.ts';
import { ShardRoutes } from '../router/sharded.ts';
import { hostReplica } from '../router/local-groups.ts';
import { shardPath, type RequestPath } from '../router/request-path.ts';
import { createPartitioner, type Partitioner } from '../partition/index.ts';
import { decodeOwnership } from '../replica/ownership.ts';
import { HandoffSource } from '../resharding/source.ts';
import { Reconciler } from '../resharding/reconciler.ts';
import { HandoffType, decodeExport, decodeFreeze, encodeExportChunk } from '../wire/handoff-codec.ts';
import { decodeMembership } from '../wire/membership-codec.ts';
import { AddressBook } from '../membership/address-book.ts';
import { MemberLinks } from '../membership/member-links.ts';
import { MembershipAdmin } from '../membership/executor.ts';
import { groupOf, type ClusterConfig } from '../placement/config.ts';
import { BadRequestError, encodeResponse } from '../wire/index.ts';
import { serveNativeClient } from '../doors/native-door.ts';
import { FrameSocket } from '../transport/frame-socket.ts';
import { servePeerLink } from '../transport/inbound.ts';
import { Peers } from '../transport/peers.ts';
import { LinkHub, type HostedReplica } from '../transport/link-hub.ts';
import type { Tap } from '../transport/tap.ts';
import { DATA_FILE, openStore, type Store } from '../storage/index.ts';
import { checkKeyValue } from '../storage/limits.ts';
import { FrameType, PROTOCOL_VERSION, decodeHello, type Frame, type Response } from '../wire/index.ts';
import type { ServerConfig } from './config.ts';
import { startDoors, type Doors } from './doors.ts';
import { ServerMetrics, replicaMetricSources } from './metrics.ts';
import { memberAddresses } from './pod-identity.ts';
import { groupHasRun } from './rejoin.ts';
import { startProbe, type StartProbe } from './start-probe.ts';
import { CONFIG_WAIT_MS, startBoundMs } from '../cluster/start-bound.ts';
import { LoopLag } from './loop-lag.ts';
import { createLogger, type Logger } from '../log/logger.ts';

export interface ServerOptions {
  tap?: Tap;
  /** Default: the format and level of the config, with this replica's group and id on every line. */
  log?: Logger;
  /**
   * Called when a fatal storage error closed this replica (even if that close failed: logged).
   * Default: the process exits with 1 once the replica is closed (nothing else keeps it running); a
   * process hosting several replicas (`kvs host`) reports it instead.
   */
  onFatal?: () => void;
  /**
   * The process's replica links, shared by every replica the process hosts (`kvs host`): one
   * connection per pair of processes. Default: a hub of this replica's own.
   */
  hub?: LinkHub;
  /**
   * Ends a start still waiting for the placement group (a `kvs host` asked to stop meanwhile): it
   * rejects with the signal's reason, having opened nothing. A start past that wait runs to its end.
   */
  signal?: AbortSignal;
}

/** The pieces a replica of a shard group has on top of a plain replica. */
interface Sharding {
  watcher: ConfigWatcher;
  partitioner: Partitioner;
}

export class KvsServer {
  readonly config: ServerConfig;
  readonly store: Store;
  readonly replica: Replica;
  readonly router: Router;
  readonly peers: Peers;
  /** Addresses of this group's replicas; links follow the Raft configuration (docs/membership.md). */
  readonly book: AddressBook;
  private readonly links: MemberLinks;
  private readonly membership: MembershipAdmin;
  readonly sm: StateMachine;
  readonly reconciler: Reconciler | undefined;
  private readonly handoff: HandoffSource;
  private readonly groups: GroupConnections | undefined;
  /** Shared with the other replicas this process hosts (sharedPlacementWatcher). */
  private readonly watcher: ConfigWatcher | undefined;
  private readonly unwatch: (() => void) | undefined;
  private readonly unhost: (() => void) | undefined;
  private readonly hub: LinkHub;
  /** What the replica's links deliver: on its own connections and on those its process shares. */
  private readonly linked: HostedReplica;
  /** Leaves the hub: pairs riding a shared connection to this replica are told it is gone. */
  private readonly unhostLinks: () => void;
  private readonly routes: ShardRoutes | undefined;
  /** Group 0 without --placement: the placement group, which routes user keys once a cluster exists. */
  private readonly front: PlacementFront | undefined;
  /** What the doors call: the request path composed for this replica's role (request-path.ts). */
  private readonly path: RequestPath;
  private listener: net.Server | undefined;
  /** The native door's address as bound (host after any fallback from [::], the port taken). */
  private nativeAddress: string | undefined;
  readonly metrics: ServerMetrics;
  private doors: Doors | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Accepted links other pairs of replicas may ride (protocol 3): they outlive this replica (close). */
  private readonly sharedLinks = new WeakSet<net.Socket>();
  private readonly log: Logger;
  private readonly tap: Tap | undefined;
  readonly startedAt = Date.now();
  /** The close under way or done (close()). */
  private closing: Promise<void> | undefined;
  /** The doors being or already closed, and that close. */
  private doorsClose: { doors: Doors; done: Promise<void> } | undefined;

  private constructor(config: ServerConfig, store: Store, opts: ServerOptions, sharding: Sharding | undefined) {
    this.config = config;
    this.store = store;
    this.log = opts.log ?? serverLogger(config);
    this.tap = opts.tap;
    // A joining replica starts outside any configuration: it never campaigns, and learns its
    // membership from the leader's log or snapshot (configuration entries carry the whole set).
    // So does a founder whose group ran without its (lost) data: rejoin.ts.
    const voters = config.join || config.lostData ? [] : config.replicas.map((r) => r.id).sort((a, b) => a - b);
    // Loaded first: the ownership is read from the generation an installed snapshot switched to,
    // with the log's records past LMDB's checkpoint replayed (a freeze, an activation).
    const persisted = store.load({ voters, learners: [] });
    const ownership = store.getMeta(OWNERSHIP_META);
    this.sm = new StateMachine(config.group, sharding?.partitioner, ownership ? decodeOwnership(ownership) : undefined);
    const self = { version: PROTOCOL_VERSION, replicaId: config.id, groupId: config.group };
    this.book = new AddressBook(config.replicas, config.podName && config.dnsSuffix ? memberAddresses(config.podName, config.group, config.dnsSuffix, config.listen) : undefined);
    if (sharding) {
      // The placement configuration lists the group's replicas, including ones added since start.
      const fromConfig = (c: ClusterConfig | undefined): void => this.book.setAll(c ? (groupOf(c, config.group)?.replicas ?? []) : []);
      fromConfig(sharding.watcher.current);
      this.unwatch = sharding.watcher.onChange(fromConfig);
    }
    this.hub = opts.hub ?? new LinkHub();
    this.peers = new Peers(self, [], opts.tap, this.hub);
    const storage = machineStorage(store, this.sm);
    const loopLag = new LoopLag();
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
        quietAfterTicks: config.quietAfterTicks,
        // From the store's mark, not the directory: a replica replaced, then restarted before it
        // caught up, is still blank (docs/raft.md).
        blankStart: store.blank,
      },
      snapshots: store.snapshots,
      persisted,
      storage: {
        persist: async (rd) => {
          const t0 = performance.now();
          await storage.persist(rd);
          this.metrics.observeFsync((performance.now() - t0) / 1000, rd.entries.length);
        },
        apply: storage.apply,
        commitSoon: storage.commitSoon,
        clearBlank: storage.clearBlank,
      },
      // The tick's lateness is the event-loop lag /metrics reports (no timer of its own: loop-lag.ts).
      env: { ...systemEnv, every: (ms, fn) => systemEnv.every(ms, loopLag.timed(ms, fn)) },
      send: (msgs) => {
        this.links.sync();
        this.peers.send(msgs);
      },
      tickMs: config.tickMs,
      logTail: config.logTail,
      compactEvery: Math.max(config.logTail, 64),
      onSoftState: (s) => this.log.info('raft state changed', { role: s.role, term: s.term, leader: s.leader || null }),
      onFatal: (e) => {
        this.log.error('fatal storage error, stopping', { error: e });
        if (!opts.onFatal) process.exitCode = 1;
        void this.close().then(opts.onFatal, (err: unknown) => {
          this.log.error('closing after the fatal error failed', { error: err });
          opts.onFatal?.();
        });
      },
    });
    this.router = new Router({
      replica: this.replica,
      reader: store,
      forwarder: {
        forward: (to, type, body, hops, timeoutMs) => this.peers.forward(to, type, body, hops, timeoutMs),
        addressOf: (id) => this.book.addressOf(id),
      },
      checkSizes: (key, value) => checkKeyValue(key, value, { maxKeyBytes: config.maxKeyBytes, maxValueBytes: config.maxValueBytes }),
      requestTimeoutMs: config.requestTimeoutMs,
      // Elections end within about one to two election timeouts; three without a leader means cut off.
      strandedAfterMs: 3 * config.electionTicks * config.tickMs,
      status: () => this.statusResponse(),
      ...(sharding ? { ownership: this.sm.readerOwnership() } : {}),
    });
    this.links = new MemberLinks({ self: config.id, conf: () => this.replica.node.conf, book: this.book, peers: this.peers, log: this.log });
    this.links.sync();
    this.membership = new MembershipAdmin({
      group: config.group,
      replica: this.replica,
      book: this.book,
      watcher: sharding?.watcher,
      tickMs: config.tickMs,
      electionTicks: config.electionTicks,
      log: this.log,
    });
    this.metrics = new ServerMetrics(replicaMetricSources({ replica: this.replica, router: this.router, peers: this.peers, store, ...(sharding ? { handoffPending: () => this.sm.holdsUnserved(), handoffStale: () => this.sm.stats.staleHandOffs, shardRoutes: () => this.routes?.stats ?? { remote: 0, hosted: 0, hostedReads: 0 } } : {}) }), loopLag);
    const leaderAddress = (): string => this.book.addressOf(this.replica.leader);
    this.handoff = new HandoffSource(this.replica, this.sm, store, leaderAddress, Date.now, () => void sharding?.watcher.refresh());
    if (sharding) {
      this.watcher = sharding.watcher;
      this.groups = new GroupConnections(() => sharding.watcher.current, attemptMsFor(config.requestTimeoutMs));
      const routes = (this.routes = new ShardRoutes({
        group: config.group,
        watcher: sharding.watcher,
        partitioner: sharding.partitioner,
        groups: this.groups,
        local: (req, raw, deadline) => this.router.local(req, raw, deadline),
        refusal: (req) => this.router.refusal(req),
        hostedReadTryMs: config.electionTicks * config.tickMs,
      }));
      this.path = shardPath(routes, this.router);
      // Requests that other replicas of this process route to this group, while it leads.
      this.unhost = hostReplica(sharding.watcher, {
        group: config.group,
        isLeader: () => this.replica.isLeader,
        knowsLeader: () => this.replica.leader !== 0,
        local: (req, raw, deadline) => this.router.local(req, raw, deadline),
      });
      this.reconciler = new Reconciler({ replica: this.replica, sm: this.sm, watcher: sharding.watcher, store, log: this.log, waveSize: config.handoffWave });
    } else if (config.group === 0) {
      this.front = new PlacementFront({
        group: config.group,
        watcher: sharedPlacementWatcher(config.replicas.map((r) => r.address)),
        router: this.router,
        hasConfig: this.configPresence(store),
        attemptMs: attemptMsFor(config.requestTimeoutMs),
        log: this.log,
      });
      this.path = this.front;
    } else {
      this.path = this.router;
    }
    this.linked = {
      onRaft: (msgs) => {
        for (const m of msgs) this.replica.step(m);
      },
      execute: (req, raw) => this.path.execute(req, raw),
      ...(this.tap ? { tap: this.tap } : {}),
    };
    this.unhostLinks = this.hub.host(config.group, config.id, this.linked);
  }

  /**
   * Whether the state machine holds a cluster configuration, asked on every data request of a
   * placement replica until its routes exist: re-read only after an apply or 50 ms, so reads on a
   * plain single group do not each pay an LMDB lookup.
   */
  private configPresence(store: Store): () => boolean {
    let at = -1;
    let checkedMs = 0;
    let present = false;
    return () => {
      const applied = store.applied;
      const now = performance.now();
      if (applied !== at || now - checkedMs > 50) {
        at = applied;
        checkedMs = now;
        present = store.get(CONFIG_KEY_BYTES) !== null;
      }
      return present;
    };
  }

  static async start(config: ServerConfig, opts: ServerOptions = {}): Promise<KvsServer> {
    // On Kubernetes the kubelet probes the HTTP door from the container's start: answer it until
    // the door opens (start-probe.ts), within the bound of the steps before it for this store.
    const probe = config.podName && config.http && !config.http.endsWith(':0') ? await startProbe(config.http, startBoundMs(dataFileBytes(config.dataDir))) : undefined;
    try {
      return await KvsServer.startSteps(config, opts, probe);
    } finally {
      await probe?.close();
    }
  }

  private static async startSteps(config: ServerConfig, opts: ServerOptions, probe: StartProbe | undefined): Promise<KvsServer> {
    if (config.rejoinCheck) {
      const others = config.replicas.filter((r) => r.id !== config.id).map((r) => r.address);
      if (await groupHasRun(others, statusTerm)) {
        (opts.log ?? serverLogger(config)).warn('empty data directory, but the group has run: starting outside its configuration until the leader brings this replica up to date', { peers: others });
        config = { ...config, lostData: true };
      }
    }
    let sharding: Sharding | undefined;
    if (config.placement.length > 0) {
      // A shard replica learns the partition count from the cluster configuration before it serves.
      const watcher = sharedPlacementWatcher(config.placement);
      try {
        const first = await watcher.waitFor(1, CONFIG_WAIT_MS, opts.signal);
        sharding = { watcher, partitioner: await createPartitioner(first.partitions) };
      } catch (e) {
        watcher.stop();
        throw e;
      }
    }
    if (opts.signal?.aborted) {
      sharding?.watcher.stop();
      throw opts.signal.reason as Error;
    }
    // The store records which replica it is: another replica's directory (swapped --id, --group or
    // --data) is refused here instead of running with another node's log and vote.
    let store: Store;
    try {
      store = await openStore({
        path: config.dataDir,
        identity: { group: config.group, replica: config.id },
        ...(config.sharedData !== undefined ? { sharedData: config.sharedData } : {}),
      });
    } catch (e) {
      sharding?.watcher.stop();
      throw e;
    }
    // A failed start gives back what it opened: in a host process the replica is started again in
    // the same process, and a store left open there would refuse it ("already open") for good.
    let server: KvsServer;
    try {
      server = new KvsServer(config, store, opts, sharding);
    } catch (e) {
      sharding?.watcher.stop();
      await store.close().catch(() => {});
      throw e;
    }
    try {
      await server.listen();
    } catch (e) {
      return KvsServer.startFailed(server, e);
    }
    try {
      await probe?.close(); // the HTTP door takes its port
      server.doors = await startDoors({
        config,
        nativeAddress: server.nativeAddress ?? config.listen,
        path: server.path,
        replica: server.replica,
        store,
        peers: server.peers,
        metrics: server.metrics,
        startedAt: server.startedAt,
        epoch: () => server.sm.epoch,
        notServing: () => server.notServing(),
        log: server.log,
      });
    } catch (e) {
      return KvsServer.startFailed(server, e);
    }
    if (server.closing) {
      // It closed itself meanwhile (a fatal storage error): close() runs once, so what this start
      // began after it (the reconciler's subscription to the shared watcher, the doors) would stay.
      // Returned closed, as startFailed does: the caller reports the fatal error (kvs server exits
      // 1); a failure of that close is the fatal path's to log, not this start's to throw.
      await server.close().catch(() => {});
      return server;
    }
    server.replica.start();
    server.reconciler?.start();
    server.front?.start();
    return server;
  }

  /**
   * A step of `start` failed with `e` (the links' listen, a door's): closes what the start opened.
   * The rule: a replica that closed itself before (a fatal storage error, whose close also ends a
   * pending listen) is returned closed, so that its caller reports the fatal error (kvs server exits
   * 1, kvs host says so), not `e`; a failure of that close is the fatal path's (it logs it).
   * Otherwise the start fails with `e`, the cause; a close failing too is logged, not thrown over it.
   */
  private static async startFailed(server: KvsServer, e: unknown): Promise<KvsServer> {
    const closedItself = server.closed;
    try {
      await server.close();
    } catch (c) {
      if (!closedItself) server.log.error('closing after a failed start failed', { error: c });
    }
    if (closedItself) return server;
    throw e;
  }

  /** Why user requests would fail here although Raft is fine (src/doors/readiness.ts), or undefined. */
  private notServing(): string | undefined {
    if (this.watcher && this.sm.epoch === 0) return 'the cluster configuration is not applied by this replica yet';
    return this.front?.notRouting();
  }

  /** Admin frames: add or remove a replica of this group (carried out by the leader). */
  private membershipFrame(f: Frame): Promise<Uint8Array> | undefined {
    if (f.type !== FrameType.Membership) return undefined;
    let change;
    try {
      change = decodeMembership(f.body);
    } catch (e) {
      if (!(e instanceof BadRequestError)) throw e;
      return Promise.resolve(encodeResponse(f.requestId, { kind: 'error', error: { code: 'BAD_REQUEST', message: e.message } }));
    }
    return this.membership.execute(change).then((res) => encodeResponse(f.requestId, res));
  }

  /** Partition hand-off frames (another group's leader asking this group for partitions). */
  private handoffFrame(f: Frame): Promise<Uint8Array> | undefined {
    if (f.type !== HandoffType.Freeze && f.type !== HandoffType.Export) return undefined;
    const answer = async (): Promise<Uint8Array> => {
      try {
        if (f.type === HandoffType.Freeze) return encodeResponse(f.requestId, await this.handoff.freeze(decodeFreeze(f.body)));
        const r = await this.handoff.export(decodeExport(f.body));
        return 'kind' in r ? encodeResponse(f.requestId, r) : encodeExportChunk(f.requestId, r);
      } catch (e) {
        const code = e instanceof BadRequestError ? 'BAD_REQUEST' : 'UNAVAILABLE';
        return encodeResponse(f.requestId, { kind: 'error', error: { code, message: (e as Error).message } });
      }
    };
    return answer();
  }

  private async listen(): Promise<void> {
    // Half-open allowed: a client that shuts down its sending side still gets its answers (the
    // native door closes once they are written; a replica link closes at once, as before).
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    server.maxConnections = 10_000;
    this.listener = server;
    this.nativeAddress = await listenAddress(server, this.config.listen, (e) => this.log.warn('native door: a connection could not be accepted', { error: e }));
  }

  /** The first frame tells a replica link (HELLO) from a client connection. */
  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const conn = new FrameSocket(socket);
    // Until the first frame says otherwise, this is a client (so bad framing gets a client answer).
    serveNativeClient(conn, this.path, {
      special: (f) => this.handoffFrame(f) ?? this.membershipFrame(f),
      observe: (op, ms, ok) => this.metrics.observeRequest('native', op, ms / 1000, ok ? 'ok' : 'error'),
    });
    const asClient = conn.onFrame;
    conn.onFrame = (first: Frame) => {
      if (first.type !== FrameType.Hello) {
        conn.onFrame = asClient;
        this.metrics.connectionOpened('native');
        socket.once('close', () => this.metrics.connectionClosed('native'));
        asClient(first);
        return;
      }
      let hello;
      try {
        hello = decodeHello(first.body);
      } catch (e) {
        if (!(e instanceof BadRequestError)) throw e;
        // protocol.md §6.1: a malformed HELLO is answered ERROR BAD_REQUEST, then the link closes
        // (its peer learns why instead of seeing a bare reset); frames after it are ignored.
        conn.onFrame = () => {};
        conn.write(encodeResponse(0, { kind: 'error', error: { code: 'BAD_REQUEST', message: e.message } }));
        socket.end();
        return;
      }
      conn.onFramingError = () => socket.destroy();
      conn.onInputDone = () => socket.end();
      if (hello.version >= 3) this.sharedLinks.add(socket);
      servePeerLink(conn, hello, {
        self: { version: PROTOCOL_VERSION, replicaId: this.config.id, groupId: this.config.group },
        accept: (h) => (h.groupId === this.config.group ? undefined : `replica ${h.replicaId} is in group ${h.groupId}, this is group ${this.config.group}`),
        ...this.linked,
        hub: this.hub,
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
        leaderAddr: this.book.addressOf(leader),
        commitIndex: s.commit,
        appliedIndex: s.applied,
        epoch: this.sm.epoch,
        blank: s.blank,
      },
    };
  }

  /**
   * Graceful stop: a leader first hands leadership to a caught-up voter that answers, heard from
   * without a break for longest (RaftNode.transferTarget), so clients see no election timeout;
   * then everything closes.
   */
  async shutdown(): Promise<void> {
    // `closed` is checked here and in the wait, and both are needed. Here: a replica closed or
    // closing (a fatal storage error) begins no hand-over: its node is stopped, or about to be, and
    // still believes it leads. In the wait: one closed meanwhile would, for that belief, wait to
    // `until` (and log a transfer that timed out).
    if (this.closed) return this.close();
    const target = this.replica.node.transferTarget();
    if (target !== undefined && this.replica.transferLeadership(target)) {
      const until = Date.now() + this.config.tickMs * this.config.electionTicks;
      while (Date.now() < until && this.replica.isLeader && !this.closed) await new Promise((r) => setTimeout(r, this.config.tickMs / 2));
      if (!this.closed) this.log.info(this.replica.isLeader ? 'leadership transfer timed out' : 'handed leadership over', { to: target });
    }
    await this.close();
  }

  /** Whether it is closed or closing: asked or by itself (a fatal storage error, possibly during its start). */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Every door's address: native, and resp, grpc, http, ws when configured. */
  get endpoints(): Record<string, string> {
    return this.doors?.endpoints ?? { native: this.nativeAddress ?? this.config.listen };
  }

  /**
   * Closes what is open. Everything but the doors closes once: a later or concurrent call waits for
   * that close (a replica that closed itself on a fatal error is closed again by `kvs host`, or
   * during its graceful stop; a second pass stopped the process's shared placement watcher again,
   * for its other replicas too). A start that finds it closed meanwhile closes the doors it opened.
   * Every call returns once the doors are closed, whichever call closes them.
   */
  async close(): Promise<void> {
    this.closing ??= this.closeOnce();
    try {
      await this.closing;
    } finally {
      await this.closeDoors(); // doors a start opened after the close began, even if the close failed
    }
  }

  /** Every call waits for the doors' close under way: one that returned at once left them open. */
  private closeDoors(): Promise<void> {
    const doors = this.doors;
    if (doors && doors !== this.doorsClose?.doors) this.doorsClose = { doors, done: doors.close() };
    return this.doorsClose?.done ?? Promise.resolve();
  }

  private async closeOnce(): Promise<void> {
    this.unhostLinks();
    this.unhost?.();
    await this.closeDoors();
    this.reconciler?.stop();
    this.unwatch?.();
    this.watcher?.stop();
    this.groups?.close();
    this.front?.stop();
    this.replica.stop();
    this.peers.close();
    this.listener?.close();
    // A link the process's other replicas' pairs ride stays open for them (the hub closes it with
    // the last one): closed here, their forwards in flight would end with an unknown outcome.
    for (const s of this.sockets) {
      if (this.sharedLinks.has(s)) this.hub.adopt(s);
      else s.destroy();
    }
    try {
      await this.store.close();
    } finally {
      this.metrics.close(); // its event-loop and GC monitors, whatever the store's close did
    }
  }
}

/** The term the replica at `address` reports (rejoin.ts), or undefined when it does not answer. */
async function statusTerm(address: string, timeoutMs: number): Promise<number | undefined> {
  const client = new KvsClient({ endpoints: [address], timeoutMs });
  try {
    return (await client.status(address)).term;
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

/** The replica's log: every line names its group and replica (docs/operations.md). */
export function serverLogger(config: Pick<ServerConfig, 'id' | 'group' | 'logFormat' | 'logLevel'>): Logger {
  return createLogger({ format: config.logFormat, level: config.logLevel, bindings: { group: config.group, replica: config.id } });
}

/** The size of the store's data file in `dir` (0: none yet, or a store kept elsewhere). */
function dataFileBytes(dir: string): number {
  try {
    return statSync(join(dir, DATA_FILE)).size;
  } catch {
    return 0;
  }
}
