// Leader election on a coordination.k8s.io/v1 Lease, so two operator pods never both act. A
// candidate takes the lease when it is free or expired (an update carrying the resourceVersion it
// read: of two candidates the API server accepts one, the other gets 409 Conflict) and renews it
// every `renewMs`. The holder stops acting at `renewDeadlineMs` after the start of its last
// successful renewal, from a timer of its own, whatever its requests are doing: a renewal that
// hangs (an API server that accepted the connection and never answers) cannot keep it leading. The
// deadline is shorter than the lease's duration, so the holder has stopped before any other
// candidate can see the lease expired (less the clocks' skew: the others compare the renewTime
// written with their own clocks). Every request has a timeout (`requestTimeoutMs`), so a hung one
// ends and the next round tries again.
import { CoordinationV1Api, Observable, type ConfigurationOptions, type KubeConfig, type ObservableMiddleware, type V1Lease } from '@kubernetes/client-node';

export interface LeaseOptions {
  namespace: string;
  name: string;
  identity: string;
  durationS?: number;
  renewMs?: number;
  /**
   * The holder steps down this long after the start of its last successful renewal, unless another
   * renewal landed meanwhile (default: two thirds of the duration). Must be less than the duration.
   */
  renewDeadlineMs?: number;
  /** Each request to the API server is aborted after this long (default: the renew deadline / 2, at most 5 s). */
  requestTimeoutMs?: number;
  onChange: (leading: boolean) => void;
  now?: () => Date;
}

/** Request options that abort the request after `ms` (client-node middleware setting a fetch signal). */
export function timeoutOptions(ms: number): ConfigurationOptions<ObservableMiddleware> {
  const middleware: ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(AbortSignal.timeout(ms));
      return new Observable(Promise.resolve(ctx));
    },
    post: (res) => new Observable(Promise.resolve(res)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

export class LeaderLease {
  private readonly api: CoordinationV1Api;
  private timer: NodeJS.Timeout | undefined;
  /** Fires at the renew deadline of the last successful renewal: the holder steps down. */
  private deadline: NodeJS.Timeout | undefined;
  private leading = false;
  private stopped = false;
  private readonly renewDeadlineMs: number;
  private readonly request: ConfigurationOptions<ObservableMiddleware>;

  constructor(
    kc: KubeConfig,
    private readonly o: LeaseOptions,
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    const durationMs = this.durationS * 1000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? Math.floor((durationMs * 2) / 3);
    if (!(this.renewDeadlineMs > 0 && this.renewDeadlineMs < durationMs)) throw new Error(`lease renew deadline ${this.renewDeadlineMs} ms must be above 0 and below the lease duration (${durationMs} ms)`);
    this.request = timeoutOptions(o.requestTimeoutMs ?? Math.min(5000, Math.floor(this.renewDeadlineMs / 2)));
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.round();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    if (this.leading) {
      // Hand the lease over at once instead of making the next operator wait for it to expire.
      await this.write({ holderIdentity: undefined, leaseDurationSeconds: 1 }).catch(() => undefined);
      this.set(false);
    }
  }

  private get durationS(): number {
    return this.o.durationS ?? 15;
  }

  private async round(): Promise<void> {
    try {
      await this.tryAcquireOrRenew();
    } catch {
      // Lost contact (or a request timed out): the deadline timer ends the leadership if no
      // renewal lands in time.
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.round(), this.o.renewMs ?? 5000);
  }

  private async tryAcquireOrRenew(): Promise<void> {
    // The deadline counts from before the first request: the renewTime written is no later.
    const started = Date.now();
    const now = (this.o.now ?? (() => new Date()))();
    let lease: V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace }, this.request);
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
    }
    if (!lease) {
      await this.api.createNamespacedLease({ namespace: this.o.namespace, body: { metadata: { name: this.o.name, namespace: this.o.namespace }, spec: this.mine(now, now) } }, this.request);
      return this.renewed(started);
    }
    const s = lease.spec ?? {};
    const renewed = s.renewTime ? new Date(s.renewTime).getTime() : 0;
    const expired = !s.holderIdentity || renewed + (s.leaseDurationSeconds ?? this.durationS) * 1000 < now.getTime();
    if (s.holderIdentity !== this.o.identity && !expired) return this.set(false);
    const acquire = s.holderIdentity === this.o.identity && s.acquireTime ? new Date(s.acquireTime) : now;
    try {
      await this.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: { ...lease, spec: { ...this.mine(now, acquire), leaseTransitions: (s.leaseTransitions ?? 0) + (s.holderIdentity === this.o.identity ? 0 : 1) } } }, this.request);
    } catch (e) {
      if ((e as { code?: number }).code === 409) return this.set(false);
      throw e;
    }
    this.renewed(started);
  }

  private mine(now: Date, acquired: Date): NonNullable<V1Lease['spec']> {
    return { holderIdentity: this.o.identity, leaseDurationSeconds: this.durationS, acquireTime: acquired, renewTime: now };
  }

  private async write(spec: Partial<NonNullable<V1Lease['spec']>>): Promise<void> {
    const lease = await this.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace }, this.request);
    if (lease.spec?.holderIdentity !== this.o.identity) return;
    await this.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: { ...lease, spec: { ...lease.spec, ...spec } } }, this.request);
  }

  /** A renewal begun at `started` landed: lead until started + the renew deadline (or a later renewal's). */
  private renewed(started: number): void {
    const left = started + this.renewDeadlineMs - Date.now();
    clearTimeout(this.deadline);
    // Landed too late (or stopped meanwhile): another candidate may already be about to take it.
    if (left <= 0 || this.stopped) return this.set(false);
    this.deadline = setTimeout(() => this.set(false), left);
    this.set(true);
  }

  private set(leading: boolean): void {
    if (!leading) clearTimeout(this.deadline);
    if (leading === this.leading) return;
    this.leading = leading;
    this.o.onChange(leading);
  }
}
