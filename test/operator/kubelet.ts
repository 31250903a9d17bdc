// The StatefulSet controller and kubelet of the operator tests, hooked into the fake API server:
// keeps one pod (and one volume claim) per ordinal below spec.replicas, created from the current
// template; removes pods above it (and their claims: whenScaled Delete); recreates a deleted pod.
// `started(pod)` decides what a pod runs: nothing by default (it is ready at once); the end-to-end
// test starts a real `kvs server` process there and probes its readiness.
import type { FakeApiServer } from './fake-apiserver.ts';

type Obj = Parameters<FakeApiServer['put']>[2];

export interface PodHooks {
  /** Called for a new pod; returns its native address (annotation) or undefined. */
  started?: (pod: Obj, sts: Obj) => string | undefined;
  /** A pod was deleted (by the operator, a scale-down, or its StatefulSet's deletion). */
  stopped?: (pod: Obj) => void;
  /** A volume claim was deleted. */
  volumeDeleted?: (claim: Obj) => void;
  /**
   * Readiness comes from a probe (setReady): a new pod starts not ready, as a kubelet's does. Else
   * it is ready at once. (A recreated pod that counted as ready before its process answered let
   * the operator restart the next member of its group too early, leaving it without a quorum.)
   */
  probed?: boolean;
}

export class StatefulSetShim {
  private busy = false;
  private pending = false;

  constructor(
    private readonly api: FakeApiServer,
    private readonly ns: string,
    private readonly hooks: PodHooks = {},
  ) {
    api.onChange = (type, resource, obj) => {
      if (type === 'DELETED' && resource === 'pods') this.hooks.stopped?.(obj);
      if (type === 'DELETED' && resource === 'persistentvolumeclaims') this.hooks.volumeDeleted?.(obj);
      if (resource === 'statefulsets' || resource === 'pods') queueMicrotask(() => this.sync());
    };
  }

  /** Brings pods and claims in line with every StatefulSet (re-entrant calls coalesce). */
  sync(): void {
    if (this.busy) {
      this.pending = true;
      return;
    }
    this.busy = true;
    try {
      do {
        this.pending = false;
        this.syncOnce();
      } while (this.pending);
    } finally {
      this.busy = false;
    }
  }

  private syncOnce(): void {
    const sets = this.api.list('statefulsets', this.ns);
    for (const sts of sets) {
      const name = sts.metadata.name;
      const spec = sts.spec as { replicas: number; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: { containers: { name: string; image: string }[] } }; volumeClaimTemplates?: { metadata: { name: string; labels?: Record<string, string> } }[] };
      const pods = this.api.list('pods', this.ns).filter((p) => p.metadata.labels?.group === name);
      for (const p of pods) {
        const ordinal = Number(p.metadata.name.slice(name.length + 1));
        if (ordinal >= spec.replicas) {
          this.api.remove('pods', this.ns, p.metadata.name);
          this.api.remove('persistentvolumeclaims', this.ns, `data-${p.metadata.name}`);
        }
      }
      for (let o = 0; o < spec.replicas; o++) {
        const podName = `${name}-${o}`;
        if (this.api.get('pods', this.ns, podName)) continue;
        const claim = spec.volumeClaimTemplates?.[0];
        if (claim && !this.api.get('persistentvolumeclaims', this.ns, `${claim.metadata.name}-${podName}`)) {
          this.api.put('persistentvolumeclaims', this.ns, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: `${claim.metadata.name}-${podName}`, labels: claim.metadata.labels ?? {} } });
        }
        const image = spec.template.spec.containers[0]!.image;
        const pod: Obj = { apiVersion: 'v1', kind: 'Pod', metadata: { name: podName, labels: spec.template.metadata.labels, annotations: { ...(spec.template.metadata.annotations ?? {}) } }, spec: spec.template.spec };
        const address = this.hooks.started?.(pod, sts);
        if (address) (pod.metadata.annotations as Record<string, string>)['kvs.sharded-kvs.dev/address'] = address;
        pod.status = { phase: 'Running', containerStatuses: [{ name: 'kvs', image, state: { running: {} } }], conditions: [{ type: 'Ready', status: this.hooks.probed ? 'False' : 'True' }] };
        this.api.put('pods', this.ns, pod);
      }
    }
    // Pods of deleted StatefulSets go with them.
    for (const p of this.api.list('pods', this.ns)) {
      if (!sets.some((s) => s.metadata.name === p.metadata.labels?.group)) {
        this.api.remove('pods', this.ns, p.metadata.name);
      }
    }
  }

  /** Marks a pod ready or not (its readiness probe). */
  setReady(name: string, ready: boolean): void {
    const p = this.api.get('pods', this.ns, name);
    if (!p) return;
    const status = p.status as { conditions: { type: string; status: string }[] };
    this.api.put('pods', this.ns, { ...p, status: { ...status, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } });
  }
}
