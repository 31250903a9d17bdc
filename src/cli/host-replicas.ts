// The replicas a `kvs host` process runs, one small state machine each: absent → starting →
// running → stopping → absent. Every start ends in exactly one report: `started` (then, later,
// one `exited`), or `exited` alone. A replica is recorded as running only if nothing ended it while
// it started, so a start command after its `exited` always finds it absent and starts it again.
import type { HostReport } from './host-protocol.ts';

/** What the host needs of a started replica (a KvsServer; a fake in tests). */
export interface HostedServer {
  /** Graceful stop (a leader hands leadership over first). */
  shutdown(): Promise<void>;
  /** Closes what is open; safe after the replica closed itself on a fatal error. */
  close(): Promise<void>;
  replica: { transferLeadership(to: number): unknown };
}

/**
 * Starts replica `id`; `onFatal` is called once the replica closed itself after a fatal storage
 * error (possibly while this start is still running). A rejection carries the reason and exit code.
 * `signal` aborts when a stop comes during the start: a start still waiting (for the placement
 * group) gives up; one that has opened its store runs to its end.
 */
export type StartServer = (onFatal: () => void, signal: AbortSignal) => Promise<HostedServer>;

/** One start of a replica, from the start command until its `exited` report; mutated in place. */
interface Slot {
  state: 'starting' | 'running' | 'stopping';
  server?: HostedServer;
  /** It closed itself on a fatal storage error. */
  fatal: boolean;
  /** The stop under way (state stopping): a later stop, stopAll's, waits for it to end. */
  stopped?: Promise<void>;
  /** Resolves once this start has ended (its `exited` report): what a stop during the start waits for. */
  ended: Promise<void>;
  markEnded: () => void;
  /** Aborted by a stop during the start (StartServer's signal); aborted: stop it once started. */
  abort: AbortController;
}

const FATAL = 'fatal storage error';

export class HostReplicas {
  private readonly slots = new Map<number, Slot>();

  constructor(private readonly report: (r: HostReport) => void) {}

  /** Starts replica `id` unless it is already starting, running or stopping. */
  async start(id: number, startServer: StartServer, failureCode: (e: unknown) => number): Promise<void> {
    if (this.slots.has(id)) return;
    let markEnded: () => void = () => {};
    const ended = new Promise<void>((r) => (markEnded = r));
    const slot: Slot = { state: 'starting', fatal: false, ended, markEnded, abort: new AbortController() };
    this.slots.set(id, slot);
    let server: HostedServer;
    try {
      server = await startServer(() => this.fatal(id, slot), slot.abort.signal);
    } catch (e) {
      // Given up because a stop asked it to: gone as asked, not a failed start.
      if (!slot.fatal && e === slot.abort.signal.reason) this.end(id, slot, 0);
      else this.end(id, slot, slot.fatal ? 1 : failureCode(e), slot.fatal ? FATAL : (e as Error).message);
      return;
    }
    if (slot.fatal) {
      // It closed itself while starting, before the start opened all it opens (its doors): close
      // again, and report it gone without ever having recorded it as running.
      await server.close().catch(() => undefined);
      this.end(id, slot, 1, FATAL);
      return;
    }
    slot.state = 'running';
    slot.server = server;
    // kvs up counts an outside kill from now on as no failed start (its restart backoff).
    this.report({ type: 'started', id });
    // A stop that came while it started.
    if (slot.abort.signal.aborted) await this.stop(id);
  }

  /**
   * Stops replica `id` gracefully and resolves once it is gone. One that is starting: a start still
   * waiting for the placement group gives up (the shard replica's wait lasts up to 60 s, and Ctrl-C
   * stops the placement group too: the host outlived kvs up's 5 s and was killed), one past it stops
   * once started (not cut short: a store half opened is what a crash leaves). One stopping: waits
   * for that stop. Else stopAll would let the host exit in the middle of either.
   */
  async stop(id: number): Promise<void> {
    const slot = this.slots.get(id);
    if (!slot) return;
    if (slot.state === 'stopping') return slot.stopped;
    if (slot.state === 'starting') {
      slot.abort.abort(new Error('stopped while starting'));
      return slot.ended;
    }
    slot.state = 'stopping';
    slot.stopped = (async () => {
      await slot.server?.shutdown().catch(() => undefined);
      this.end(id, slot, slot.fatal ? 1 : 0, slot.fatal ? FATAL : undefined);
    })();
    return slot.stopped;
  }

  /** Stops every replica (the host is ending). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.slots.keys()].map((id) => this.stop(id)));
  }

  /** Replica `id` if it is running. */
  running(id: number): HostedServer | undefined {
    const slot = this.slots.get(id);
    return slot?.state === 'running' ? slot.server : undefined;
  }

  /** The replica of `slot` closed itself. A fatal from an older start of the same id changes nothing. */
  private fatal(id: number, slot: Slot): void {
    if (this.slots.get(id) !== slot || slot.fatal) return;
    slot.fatal = true;
    // Starting or stopping: that path reports it when it ends.
    if (slot.state === 'running') this.end(id, slot, 1, FATAL);
  }

  private end(id: number, slot: Slot, code: number, error?: string): void {
    if (this.slots.get(id) !== slot) return;
    this.slots.delete(id);
    slot.markEnded();
    this.report({ type: 'exited', id, code, ...(error !== undefined ? { error } : {}) });
  }
}
