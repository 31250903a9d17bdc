// Keeps a replica's (or a client's) copy of the cluster configuration fresh: polls the placement
// group with backoff, and refreshes at once when a WRONG_GROUP answer says it is stale.
import { CONFIG_KEY, decodeConfig, encodeConfig, type ClusterConfig } from '../placement/config.ts';

/**
 * Linearizable reads and compare-and-set on the placement group's keys (a KvsClient on its
 * replicas: `placementWatcher` in client/ builds one; the watcher itself stays below the client).
 */
export interface PlacementStore {
  get(key: string): Promise<Uint8Array | null>;
  cas(key: string, expected: Uint8Array, value: Uint8Array): Promise<{ ok: boolean }>;
  close(): void;
}

export class ConfigWatcher {
  private config: ClusterConfig | undefined;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<ClusterConfig | undefined> | undefined;
  private readonly listeners: ((c: ClusterConfig) => void)[] = [];
  private stopped = false;

  constructor(
    private readonly client: PlacementStore,
    private readonly pollMs = 500,
  ) {}

  get current(): ClusterConfig | undefined {
    return this.config;
  }

  onChange(fn: (c: ClusterConfig) => void): void {
    this.listeners.push(fn);
  }

  start(): void {
    const tick = (): void => {
      void this.refresh().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.pollMs);
      });
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.client.close();
  }

  /** Reads the configuration now (shared by concurrent callers); keeps the old one on failure. */
  refresh(): Promise<ClusterConfig | undefined> {
    this.refreshing ??= this.load().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Waits until some configuration is known (at least `minEpoch`). */
  async waitFor(minEpoch = 1, timeoutMs = 30_000): Promise<ClusterConfig> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const c = (await this.refresh()) ?? this.config;
      if (c && c.epoch >= minEpoch) return c;
      if (Date.now() > until) throw new Error(`no cluster configuration at epoch >= ${minEpoch} from the placement group`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Read-modify-write of the configuration through CAS on the placement group. */
  async update(change: (c: ClusterConfig) => ClusterConfig): Promise<ClusterConfig> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const raw = await this.client.get(CONFIG_KEY);
      if (!raw) throw new Error('the cluster has no configuration yet');
      const cur = decodeConfig(raw);
      const next = change(cur);
      if (next === cur) return cur;
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
      if (!raw) return undefined;
      const c = decodeConfig(raw);
      this.set(c);
      return c;
    } catch {
      return undefined; // placement unreachable: keep routing with what we have
    }
  }

  private set(c: ClusterConfig): void {
    if (this.config && c.epoch <= this.config.epoch) return;
    this.config = c;
    for (const fn of this.listeners) fn(c);
  }
}
