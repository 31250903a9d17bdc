// /readyz: is this replica fit to take traffic? Yes when its group has a leader and this replica
// has applied everything the leader had committed when we asked. That is exactly a ReadIndex read
// barrier: the leader confirms its leadership and hands back its commit index, and the barrier
// resolves once this replica has applied up to it. A replica catching up after a restart (or
// cut off from its leader) is not ready; a Kubernetes readiness probe and a rolling upgrade wait
// on this before moving on. Probes arriving together share one barrier. A replica that knows its
// leader but cannot serve user keys yet (a shard replica before it applied the cluster
// configuration, a placement replica before its routes to the shard groups exist) is not ready
// either: the same truth `kvs up` waits for before it says ready. Nor is a blank replica (its data
// directory was replaced and it has not caught up with a leader since, docs/raft.md): it cannot
// count towards a quorum yet, so a rolling upgrade must not take down the next replica.
import type { ReadinessResult } from './door-context.ts';

export interface ReadinessSource {
  /** The leader this replica knows of; 0: none. */
  readonly leader: number;
  /** Still blank: the store keeps its blank mark (absent: never blank). */
  readonly blank?: boolean;
  readBarrier(): Promise<void>;
}

export class Readiness {
  private pending: Promise<ReadinessResult> | null = null;

  constructor(
    private readonly src: ReadinessSource,
    /** How long a barrier may take before the replica is reported as still catching up. */
    private readonly timeoutMs = 1000,
    /** Beyond Raft: why user requests would fail here (e.g. the cluster configuration not applied yet), or undefined. */
    private readonly notServing: () => string | undefined = () => undefined,
  ) {}

  check(): Promise<ReadinessResult> {
    this.pending ??= this.run().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  private async run(): Promise<ReadinessResult> {
    if (this.src.leader === 0) return { ready: false, reason: 'no leader known to this replica' };
    if (this.src.blank === true) return { ready: false, reason: 'blank: its data directory was replaced and it has not caught up with the leader yet' };
    const why = this.notServing();
    if (why !== undefined) return { ready: false, reason: why };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ReadinessResult>((resolve) => {
      timer = setTimeout(() => resolve({ ready: false, reason: `catching up: not applied up to the leader's commit index within ${this.timeoutMs} ms` }), this.timeoutMs);
    });
    const barrier = this.src.readBarrier().then(
      (): ReadinessResult => ({ ready: true, reason: 'leader known and caught up' }),
      (e: unknown): ReadinessResult => ({ ready: false, reason: `cannot confirm with the leader: ${e instanceof Error ? e.message : String(e)}` }),
    );
    try {
      return await Promise.race([barrier, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
