// Leader election on a coordination.k8s.io/v1 Lease, so two operator pods never both act. A
// candidate takes the lease when it is free or expired (an update carrying the resourceVersion it
// read: of two candidates the API server accepts one, the other gets 409 Conflict), renews it every
// `renewMs`, and stops acting as soon as a renewal fails to land within the lease's duration.
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';

export interface LeaseOptions {
  namespace: string;
  name: string;
  identity: string;
  durationS?: number;
  renewMs?: number;
  onChange: (leading: boolean) => void;
  now?: () => Date;
}

export class LeaderLease {
  private readonly api: CoordinationV1Api;
  private timer: NodeJS.Timeout | undefined;
  private leading = false;
  private lastRenew = 0;
  private stopped = false;

  constructor(
    kc: KubeConfig,
    private readonly o: LeaseOptions,
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
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
      // Lost contact: keep leading only while the last renewal is still valid.
    }
    if (this.leading && Date.now() - this.lastRenew > this.durationS * 1000) this.set(false);
    if (!this.stopped) this.timer = setTimeout(() => void this.round(), this.o.renewMs ?? 5000);
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const now = (this.o.now ?? (() => new Date()))();
    let lease: V1Lease | undefined;
    try {
      lease = await this.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
    }
    if (!lease) {
      await this.api.createNamespacedLease({ namespace: this.o.namespace, body: { metadata: { name: this.o.name, namespace: this.o.namespace }, spec: this.mine(now, now) } });
      return this.renewed();
    }
    const s = lease.spec ?? {};
    const renewed = s.renewTime ? new Date(s.renewTime).getTime() : 0;
    const expired = !s.holderIdentity || renewed + (s.leaseDurationSeconds ?? this.durationS) * 1000 < now.getTime();
    if (s.holderIdentity !== this.o.identity && !expired) return this.set(false);
    const acquire = s.holderIdentity === this.o.identity && s.acquireTime ? new Date(s.acquireTime) : now;
    try {
      await this.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: { ...lease, spec: { ...this.mine(now, acquire), leaseTransitions: (s.leaseTransitions ?? 0) + (s.holderIdentity === this.o.identity ? 0 : 1) } } });
    } catch (e) {
      if ((e as { code?: number }).code === 409) return this.set(false);
      throw e;
    }
    this.renewed();
  }

  private mine(now: Date, acquired: Date): NonNullable<V1Lease['spec']> {
    return { holderIdentity: this.o.identity, leaseDurationSeconds: this.durationS, acquireTime: acquired, renewTime: now };
  }

  private async write(spec: Partial<NonNullable<V1Lease['spec']>>): Promise<void> {
    const lease = await this.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
    if (lease.spec?.holderIdentity !== this.o.identity) return;
    await this.api.replaceNamespacedLease({ name: this.o.name, namespace: this.o.namespace, body: { ...lease, spec: { ...lease.spec, ...spec } } });
  }

  private renewed(): void {
    this.lastRenew = Date.now();
    this.set(true);
  }

  private set(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.o.onChange(leading);
  }
}
