// Keeps a replica's (or a client's) copy of the cluster configuration fresh: polls the placement
// group on the process's shared timer, and refreshes at once when a WRONG_GROUP answer says it is stale.
import { CONFIG_KEY, decodeConfig, encodeConfig, type ClusterConfig } from '../placement/config.ts';
import { Pacer } from '../timers/every.ts';

/**
 * Linearizable reads and compare-and-set on the placement group's keys (a KvsClient on its
 * replicas: `placementWatcher` in client/ builds one; the watcher itself stays below the client).
 */
export interface PlacementStore {
  get(key: string): Promise<Uint8Array | null>;
  cas(key: string, expected: Uint8Array, value: Uint8Array): Promise<{ ok: boolean }>;
  close(): void;
}

/** Unchanged configurations are polled down to once per MAX_BACKOFF × pollMs. */
const MAX_BACKOFF = 4;

export class ConfigWatcher {
  private config: ClusterConfig | undefined;
  /** Polls: every pollMs after a change, doubling up to MAX_BACKOFF × pollMs while none (poll()). */
  private readonly polling = new Pacer(() => this.poll());
  private refreshing: Promise<ClusterConfig | undefined> | undefined;
  private readonly listeners = new Set<(c: ClusterConfig) => void>();
  private started = false;
  private stopped = false;
  /** Why the last load found no configuration (undefined after a successful one). */
  private loadError: string | undefined;
  /** Holders that have not stopped yet (retain): polling ends when the last one stops. */
  private holders = 1;

  constructor(
    private readonly client: PlacementStore,
    private readonly pollMs = 500,
  ) {}

  get current(): ClusterConfig | undefined {
    return this.config;
  }

  /** Calls `fn` with every newer configuration; returns the function that stops that. */
  onChange(fn: (c: ClusterConfig) => void): () => void {
    const own = (c: ClusterConfig): void => fn(c); // a distinct entry even if `fn` is added twice
    this.listeners.add(own);
    return () => void this.listeners.delete(own);
  }

  /** Starts polling (once: later calls do nothing). */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    void this.refresh();
    this.polling.pace(this.pollMs);
  }

  /**
   * One poll on the process's shared timer; a poll still under way is joined, not repeated
   * (refresh()). A configuration that stays the same is polled less and less often: it changes only
   * when an operator reshards or changes membership, and a stale copy is corrected at once by the
   * WRONG_GROUP answers that send callers here (refresh()).
   */
  private poll(): void {
    const before = this.config;
    void this.refresh().then(() => {
      if (this.config === before && !this.stopped) this.polling.pace(Math.min(2 * this.polling.ms, MAX_BACKOFF * this.pollMs));
    });
  }

  /** Why the last read of the configuration failed (unreachable, or no configuration stored); undefined once one succeeded. */
  get lastError(): string | undefined {
    return this.loadError;
  }

  /** Whether polling has ended for good (every holder stopped). */
  get ended(): boolean {
    return this.stopped;
  }

  /** One more holder (several replicas of one process sharing the watcher): see stop(). */
  retain(): this {
    this.holders++;
    return this;
  }

  /** A holder is done; the last one ends polling and closes the client. */
  stop(): void {
    if (--this.holders > 0) return;
    this.stopped = true;
    this.polling.stop();
    this.client.close();
  }

  /** Reads the configuration now (shared by concurrent callers); keeps the old one on failure. */
  refresh(): Promise<ClusterConfig | undefined> {
    this.refreshing ??= this.load().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Waits until some configuration is known (at least `minEpoch`); `signal` ends the wait (rejecting with its reason). */
  async waitFor(minEpoch = 1, timeoutMs = 30_000, signal?: AbortSignal): Promise<ClusterConfig> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const c = (await unlessAborted(this.refresh(), signal)) ?? this.config;
      if (c && c.epoch >= minEpoch) return c;
      if (this.stopped) throw new Error('the configuration watcher was stopped');
      if (Date.now() > until) throw new Error(`no cluster configuration at epoch >= ${minEpoch} from the placement group${this.loadError ? `: ${this.loadError}` : ''}`);
      await unlessAborted(new Promise((r) => setTimeout(r, 100)), signal);
    }
  }

  /**
   * Read-modify-write of the configuration through CAS on the placement group. `confirm`, if given,
   * runs after each read of a configuration that `change` would change, and `change` is asked again
   * after it: for a change that goes by state of the caller's own that may lag behind what was read.
   */
  async update(change: (c: ClusterConfig) => ClusterConfig, confirm?: (read: ClusterConfig) => Promise<void>): Promise<ClusterConfig> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const raw = await this.client.get(CONFIG_KEY);
      if (!raw) throw new Error('the cluster has no configuration yet');
      const cur = decodeConfig(raw);
      let next = change(cur);
      if (next === cur) return cur;
      if (confirm) {
        await confirm(cur);
        next = change(cur);
        if (next === cur) return cur;
      }
      const r = await this.client.cas(CONFIG_KEY, raw, encodeConfig(next));
      if (r.ok) {
        this.set(next);
        return next;
      }
    }
    throw new Error('configuration update kept conflicting with other updates');
  }

  private async load(): Promise<ClusterConfig | undefined> {
    try {
      const raw = await this.client.get(CONFIG_KEY);
      if (!raw) {
        this.loadError = 'it holds none: not the placement group, or not initialised yet?';
        return undefined;
      }
      const c = decodeConfig(raw);
      this.set(c);
      this.loadError = undefined;
      return c;
    } catch (e) {
      this.loadError = e instanceof Error ? e.message : String(e);
      return undefined; // placement unreachable: keep routing with what we have
    }
  }

  private set(c: ClusterConfig): void {
    if (this.config && c.epoch <= this.config.epoch) return;
    this.config = c;
    if (this.started) this.polling.pace(this.pollMs);
    for (const fn of this.listeners) fn(c);
  }
}

/** `p`, or a rejection with the signal's reason as soon as it aborts (a read in flight may take its whole timeout). */
function unlessAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
