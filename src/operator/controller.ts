// The operator's I/O shell: watches KVStores, StatefulSets and pods (informers: list, then watch
// from the list's resourceVersion, relisting after 410 Gone), reads the store's state, asks the pure
// core what to do, carries it out (server-side apply with field manager "kvctl", pod and group
// deletion, the store's admin calls), writes the status subresource and events. Only the holder of
// the Lease acts. A failed step is retried with exponential back-off (1 s … 60 s) and reported in
// status.lastError and an event; nothing is abandoned half-way (membership changes are recorded in
// status.membershipInFlight before they are sent, and finished first by the next operator).
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  PolicyV1Api,
  makeInformer,
  setHeaderOptions,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { IPV6_ANY, listenTcp } from '../address/listen.ts';
import { DEFAULT_CLUSTER_DOMAIN, clusterDomain } from '../address/cluster-dns.ts';
import { LeaderLease } from './lease.ts';
import { loadGroupTemplate, type GroupTemplate } from './group-template.ts';
import { FIELD_MANAGER, LABEL_STORE, dnsSuffix, groupObjects, settingsHash, storeConfig, templateHash, type Owner } from './objects.ts';
import { observeGroups, observeVolumes, type Obj } from './observe.ts';
import { contentHash, establishedSpec, groupName, plan, PLACEMENT_GROUP, type Action, type MembershipAction } from './reconcile.ts';
import { API_GROUP, KIND, PLURAL, SpecError, checkTransition, parseSpec, type KVStore, type KVStoreStatus } from './spec.ts';
import { computeStatus, invalidSpecStatus } from './status.ts';
import { kvsStore, type StoreAccess } from './store.ts';
import { OperatorMetrics } from './metrics.ts';
import { createLogger, defaultLogFormat, type Logger } from '../log/logger.ts';

const VERSION = 'v1alpha1';
const MANAGED = 'app.kubernetes.io/managed-by=kvctl';

export interface OperatorOptions {
  namespace: string;
  /** This operator's name in the Lease (the pod name). */
  identity: string;
  leaseName?: string;
  leaseDurationS?: number;
  leaseRenewMs?: number;
  store?: StoreAccess;
  /** How often each store is looked at without a watch event (its hand-offs are not watched). */
  resyncMs?: number;
  membershipTimeoutMs?: number;
  /** Port of /healthz and /metrics; undefined: no HTTP server. */
  httpPort?: number;
  httpHost?: string;
  /** Default: JSON lines on stderr (text on a terminal), like a replica's, with component "kvctl". */
  log?: Logger;
  /** The group template (default: read from kustomize/ next to the operator, at construction). */
  template?: GroupTemplate;
  /**
   * The cluster DNS domain of the pods' names (default: the one the kubelet wrote into this pod's
   * /etc/resolv.conf; none there: cluster.local, as the pods' own names then, and earlier versions').
   */
  clusterDomain?: string;
  /**
   * Called when this operator stops leading without being stopped (its renewals failed, or another
   * holds the Lease). A step already under way (a store call, an API write) is not interrupted by
   * anything else: `kvs operator` exits here, so the step dies with the process before another
   * operator can take the Lease, as controller-runtime's managers do.
   */
  onLeadershipLost?: () => void;
}

type Cache<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

export class Operator {
  readonly metrics = new OperatorMetrics();
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly objects: KubernetesObjectApi;
  private readonly lease: LeaderLease;
  private readonly store: StoreAccess;
  private informers: Cache<KubernetesObject>[] = [];
  /** Whether the Lease last said this operator leads. */
  private leading = false;
  private kvstores: Cache<KubernetesObject> | undefined;
  private statefulSets: Cache<KubernetesObject> | undefined;
  private pods: Cache<KubernetesObject> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private http: Server | undefined;
  private stopped = false;
  /** Per store: consecutive failures and when it may be tried again. */
  private readonly backoff = new Map<string, { failures: number; until: number }>();
  private readonly log: Logger;
  private readonly template: GroupTemplate;
  /** The template's hash, part of every revision: another template (a new operator version) restarts the pods. */
  private readonly templateHash: string;
  /** What follows `<pod>.<set>.` in the pods' DNS names. */
  private readonly dnsSuffix: string;

  constructor(
    private readonly kc: KubeConfig,
    private readonly o: OperatorOptions,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.store = o.store ?? kvsStore;
    // Read once, at start: a missing or broken template stops the operator before it acts.
    this.template = o.template ?? loadGroupTemplate();
    this.templateHash = templateHash(this.template);
    this.dnsSuffix = dnsSuffix(o.namespace, o.clusterDomain ?? clusterDomain(readResolvConf()) ?? DEFAULT_CLUSTER_DOMAIN);
    this.log = o.log ?? createLogger({ format: defaultLogFormat(), bindings: { component: FIELD_MANAGER, identity: o.identity } });
    this.lease = new LeaderLease(kc, {
      namespace: o.namespace,
      name: o.leaseName ?? 'kvctl',
      identity: o.identity,
      durationS: o.leaseDurationS ?? 15,
      renewMs: o.leaseRenewMs ?? 5000,
      onChange: (leading) => void this.onLeadership(leading),
    });
  }

  get isLeader(): boolean {
    return this.lease.isLeader;
  }

  async start(): Promise<void> {
    if (this.o.httpPort !== undefined) await this.serveHttp(this.o.httpPort, this.o.httpHost ?? IPV6_ANY);
    this.lease.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.stopInformers();
    // A pass stuck in a long store call (a membership change waits up to its timeout) is left to
    // finish on its own: it acts no further once stopped, and what it sent is recorded in status.
    await Promise.race([this.running, new Promise((r) => setTimeout(r, 2000).unref())]);
    await this.lease.stop();
    await new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r()));
  }

  /** The port /healthz and /metrics listen on. */
  get httpPort(): number | undefined {
    const a = this.http?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  private async onLeadership(leading: boolean): Promise<void> {
    const led = this.leading;
    this.leading = leading;
    this.metrics.leader = leading ? 1 : 0;
    this.log.info(leading ? `${this.o.identity} leads` : `${this.o.identity} does not lead`, { lease: this.o.leaseName ?? 'kvctl' });
    if (led && !leading && !this.stopped && this.o.onLeadershipLost) {
      this.log.error('lost the Lease while leading: stopping, so that no step of this operator runs on beside the next leader', { lease: this.o.leaseName ?? 'kvctl' });
      this.o.onLeadershipLost();
    }
    if (leading && !this.stopped) await this.startInformers();
    else await this.stopInformers();
  }

  private async startInformers(): Promise<void> {
    const ns = this.o.namespace;
    const apps = this.kc.makeApiClient(AppsV1Api);
    this.kvstores = makeInformer(this.kc, `/apis/${API_GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`, () => this.custom.listNamespacedCustomObject({ group: API_GROUP, version: VERSION, namespace: ns, plural: PLURAL }) as never);
    this.statefulSets = makeInformer(this.kc, `/apis/apps/v1/namespaces/${ns}/statefulsets`, () => apps.listNamespacedStatefulSet({ namespace: ns, labelSelector: MANAGED }) as never, MANAGED);
    this.pods = makeInformer(this.kc, `/api/v1/namespaces/${ns}/pods`, () => this.core.listNamespacedPod({ namespace: ns, labelSelector: MANAGED }) as never, MANAGED);
    this.informers = [this.kvstores, this.statefulSets, this.pods];
    for (const inf of this.informers) {
      for (const verb of ['add', 'update', 'delete'] as const) inf.on(verb, () => this.schedule(200));
      // A watch that fails for another reason than 410 Gone stops; start it again after a pause.
      inf.on('error', (err) => {
        this.metrics.watchErrors++;
        this.log.warn('watch failed; restarting in 1 s', { error: String((err as Error)?.message ?? err) });
        setTimeout(() => {
          if (this.lease.isLeader && !this.stopped) void inf.start().catch(() => undefined);
        }, 1000);
      });
    }
    await Promise.all(this.informers.map((i) => i.start()));
    this.schedule(0);
  }

  private async stopInformers(): Promise<void> {
    const infs = this.informers;
    this.informers = [];
    await Promise.all(infs.map((i) => i.stop().catch(() => undefined)));
  }

  /** Runs a reconcile pass after `ms`, coalescing requests; passes never overlap. */
  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.reconcileAll().finally(() => {
        this.running = undefined;
        const next = this.again ? 0 : (this.o.resyncMs ?? 5000);
        this.again = false;
        if (this.lease.isLeader) this.schedule(next);
      });
    }, ms);
  }

  /** One pass over every KVStore of the namespace. */
  async reconcileAll(): Promise<void> {
    const all = (this.kvstores?.list(this.o.namespace) ?? []) as unknown as KVStore[];
    // A deleted KVStore's phase series and back-off go with it (else /metrics reports it forever).
    const names = new Set(all.map((kv) => kv.metadata.name));
    for (const name of [...this.metrics.phase.keys()]) if (!names.has(name)) this.metrics.phase.delete(name);
    for (const name of [...this.backoff.keys()]) if (!names.has(name)) this.backoff.delete(name);
    for (const kv of all) {
      if (!this.lease.isLeader || this.stopped) return;
      const b = this.backoff.get(kv.metadata.name);
      if (b && Date.now() < b.until) continue;
      try {
        await this.reconcileOne(kv);
        this.backoff.delete(kv.metadata.name);
      } catch (e) {
        const failures = (b?.failures ?? 0) + 1;
        const delay = Math.min(60_000, 1000 * 2 ** (failures - 1));
        this.backoff.set(kv.metadata.name, { failures, until: Date.now() + delay });
        this.metrics.errors++;
        const msg = e instanceof Error ? e.message : String(e);
        this.log.warn('step failed; retrying', { kvstore: kv.metadata.name, error: msg, retryMs: delay });
        await this.patchStatus(kv, { ...(kv.status ?? {}), lastError: msg }).catch(() => undefined);
        await this.event(kv, 'Warning', 'StepFailed', `${msg}; retrying in ${Math.round(delay / 1000)} s`).catch(() => undefined);
      }
    }
  }

  private async reconcileOne(kv: KVStore): Promise<void> {
    this.metrics.reconciles++;
    // Being deleted (foreground deletion keeps the resource until the garbage collector has removed
    // its objects): every group would look missing and be applied again, fighting the collector.
    if (kv.metadata.deletionTimestamp) return;
    const ns = this.o.namespace;
    let spec;
    try {
      spec = parseSpec(kv.spec, kv.metadata.name);
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      return this.invalidSpec(kv, e);
    }
    const store = kv.metadata.name;
    const owner: Owner = { name: store, namespace: ns, uid: kv.metadata.uid ?? '' };
    const groups = observeGroups(store, this.dnsSuffix, (this.statefulSets?.list(ns) ?? []) as Obj[], (this.pods?.list(ns) ?? []) as Obj[]);
    const claims = await this.core.listNamespacedPersistentVolumeClaim({ namespace: ns, labelSelector: `${LABEL_STORE}=${store}` });
    const retainedGroups = observeVolumes(store, groups, claims.items as Obj[]);
    const placement = groups.find((g) => g.id === PLACEMENT_GROUP)?.pods.map((p) => p.address) ?? [];
    const [config, replicas] = await Promise.all([this.store.readConfig(placement), this.store.replicaStates(groups)]);
    // The CRD's transition rules, against what the store has settled: a spec that reached us around
    // them (an API server without CEL, an edit of the stored object) changes nothing.
    try {
      checkTransition(establishedSpec(groups, config), spec);
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      return this.invalidSpec(kv, e);
    }
    const inFlight = kv.status?.membershipInFlight ?? [];
    // The settings ConfigMap's data and the group template are part of the revision: changed
    // settings, or another operator version's template, restart the pods.
    const settings = settingsHash(storeConfig(this.template, owner, spec));
    const input = { store, spec, groups, config, replicas, inFlight, retainedGroups, settings, template: this.templateHash };
    const p = plan(input);
    const status: KVStoreStatus = { ...computeStatus(input, p, kv.status, kv.metadata.generation ?? 0, new Date()), membershipInFlight: inFlight };
    if (kv.status?.lastError) status.lastError = kv.status.lastError;
    this.metrics.phase.set(store, p.phase);
    if (p.actions.length === 0) delete status.lastError;
    // Compared whatever the key order: the API server hands the status back with its keys sorted.
    if (contentHash(status) !== contentHash(kv.status ?? {})) await this.patchStatus(kv, status);
    let current = status;
    for (const a of p.actions) {
      if (!this.lease.isLeader || this.stopped) return;
      current = await this.execute(kv, owner, spec, a, groups, placement, current);
    }
    if (p.actions.length > 0 && current.lastError) {
      delete current.lastError;
      await this.patchStatus(kv, current);
    }
  }

  /** A spec the operator refuses: Degraded, Ready=False and Degraded=True (InvalidSpec) with the reason in status, and a warning event; nothing else is done. */
  private async invalidSpec(kv: KVStore, e: SpecError): Promise<void> {
    const status = invalidSpecStatus(kv.status, kv.metadata.generation ?? 0, e.message, new Date());
    this.metrics.phase.set(kv.metadata.name, 'Degraded');
    // Reported already (same rule, same generation): a pass per resync would otherwise add an Event
    // each time. Compared whatever the key order: the API server hands the status back sorted.
    if (contentHash(status) === contentHash(kv.status ?? {})) return;
    await this.patchStatus(kv, status);
    await this.event(kv, 'Warning', 'InvalidSpec', e.message);
  }

  private async execute(kv: KVStore, owner: Owner, spec: ReturnType<typeof parseSpec>, a: Action, groups: ReturnType<typeof observeGroups>, placement: string[], status: KVStoreStatus): Promise<KVStoreStatus> {
    const ns = this.o.namespace;
    this.metrics.count(a.kind);
    switch (a.kind) {
      case 'apply-group': {
        const claimTemplates = groups.find((g) => g.id === a.group)?.claimTemplates;
        for (const obj of [storeConfig(this.template, owner, spec), ...groupObjects(this.template, owner, spec, { ...a, ...(claimTemplates ? { claimTemplates } : {}) })]) await this.objects.patch(obj as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
        await this.event(kv, 'Normal', 'ApplyGroup', `${groupName(owner.name, a.group)}: ${a.replicas} replicas, revision ${a.revision}`);
        return status;
      }
      case 'init-cluster':
        await this.store.initCluster(placement, a.groups, spec.partitions);
        await this.event(kv, 'Normal', 'Created', `first configuration: ${a.groups.length} shard groups, ${spec.partitions} partitions`);
        return status;
      case 'start-reshard':
        await this.store.startReshard(placement, a.groups);
        await this.event(kv, 'Normal', 'Resharding', `resharding to shard groups ${a.groups.map((g) => g.id).join(', ')}`);
        return status;
      case 'add-member':
      case 'remove-member': {
        // Recorded before it is sent: an operator that dies now is followed by one that finishes it.
        const recorded = { ...status, membershipInFlight: [...(status.membershipInFlight ?? []).filter((x) => x.group !== a.group), a] };
        await this.patchStatus(kv, recorded);
        const addresses = groups.find((g) => g.id === a.group)?.pods.map((p) => p.address) ?? [];
        await this.store.changeMembership(addresses, a, this.o.membershipTimeoutMs ?? 120_000);
        const done = { ...recorded, membershipInFlight: recorded.membershipInFlight.filter((x: MembershipAction) => x !== a) };
        await this.patchStatus(kv, done);
        await this.event(kv, 'Normal', a.kind === 'add-member' ? 'ReplicaAdded' : 'ReplicaRemoved', `replica ${a.replicaId} of shard group ${a.group}`);
        return done;
      }
      case 'delete-pod':
        await this.core.deleteNamespacedPod({ name: a.pod, namespace: ns });
        await this.event(kv, 'Normal', 'RestartPod', `${a.pod}${a.leader ? ' (leader: it hands leadership over before it stops)' : ''} for the new revision`);
        return status;
      case 'delete-group': {
        const name = groupName(owner.name, a.group);
        const apps = this.kc.makeApiClient(AppsV1Api);
        const policy = this.kc.makeApiClient(PolicyV1Api);
        await ignoreMissing(apps.deleteNamespacedStatefulSet({ name, namespace: ns }));
        await ignoreMissing(this.core.deleteNamespacedService({ name, namespace: ns }));
        await ignoreMissing(policy.deleteNamespacedPodDisruptionBudget({ name, namespace: ns }));
        if (a.deleteVolumes) await this.core.deleteCollectionNamespacedPersistentVolumeClaim({ namespace: ns, labelSelector: `${LABEL_STORE}=${owner.name},group=${name}` });
        await this.event(kv, 'Normal', 'GroupDeleted', `${name} handed off all its partitions and was deleted (volumes ${a.deleteVolumes ? 'deleted' : 'retained'})`);
        return status;
      }
    }
  }

  /** Writes `status` whole: a JSON merge patch keeps a key it does not mention, so one dropped (lastError, epoch) is sent as null. */
  private async patchStatus(kv: KVStore, status: KVStoreStatus): Promise<void> {
    const removed = Object.keys(kv.status ?? {}).filter((k) => !(k in status));
    const body = { status: { ...Object.fromEntries(removed.map((k) => [k, null])), ...status } };
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: API_GROUP, version: VERSION, namespace: this.o.namespace, plural: PLURAL, name: kv.metadata.name, body },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    kv.status = status;
  }

  private async event(kv: KVStore, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    await this.core.createNamespacedEvent({
      namespace: this.o.namespace,
      body: {
        metadata: { generateName: `${kv.metadata.name}.`, namespace: this.o.namespace },
        involvedObject: { apiVersion: `${API_GROUP}/${VERSION}`, kind: KIND, name: kv.metadata.name, namespace: this.o.namespace, uid: kv.metadata.uid ?? '' },
        reason,
        message,
        type,
        source: { component: FIELD_MANAGER },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }

  private async serveHttp(port: number, host: string): Promise<void> {
    this.http = createServer((req, res) => {
      if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.metrics.render());
      } else {
        res.writeHead(404).end();
      }
    });
    // The kubelet probes the pod IP, IPv4 or IPv6: the dual-stack wildcard takes both.
    await listenTcp(this.http, host, port);
    // A listening server's 'error' is a connection it failed to accept (ENOMEM, ENOBUFS): it listens
    // on, and unheard the error would end the operator (as the doors: listenAddress).
    this.http.on('error', (e) => this.log.warn('http: a connection could not be accepted', { error: e.message }));
  }
}

async function ignoreMissing(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if ((e as { code?: number }).code !== 404) throw e;
  }
}

function readResolvConf(): string | undefined {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return undefined;
  }
}
