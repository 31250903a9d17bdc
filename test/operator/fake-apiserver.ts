// A Kubernetes API server for the operator's tests, speaking the REST protocol of the calls the
// operator makes: discovery, list and watch with resourceVersions (a watch from a compacted version
// gets 410 Gone as a watch ERROR event, as the real server sends it), get/create/replace with
// optimistic concurrency (409 Conflict), server-side apply (application/apply-patch+yaml with a
// required fieldManager), JSON merge patch, the status subresource, delete and deletecollection.
// Every request is recorded for assertions. Objects of a kind with a status subresource ignore
// status on writes to the main resource, and only status on writes to /status.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';

export interface Resource {
  gv: string;
  name: string;
  kind: string;
  status?: boolean;
}

export const RESOURCES: Resource[] = [
  { gv: 'v1', name: 'pods', kind: 'Pod' },
  { gv: 'v1', name: 'services', kind: 'Service' },
  { gv: 'v1', name: 'configmaps', kind: 'ConfigMap' },
  { gv: 'v1', name: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim' },
  { gv: 'v1', name: 'events', kind: 'Event' },
  { gv: 'apps/v1', name: 'statefulsets', kind: 'StatefulSet', status: true },
  { gv: 'policy/v1', name: 'poddisruptionbudgets', kind: 'PodDisruptionBudget' },
  { gv: 'coordination.k8s.io/v1', name: 'leases', kind: 'Lease' },
  { gv: 'kvs.sharded-kvs.dev/v1alpha1', name: 'kvstores', kind: 'KVStore', status: true },
];

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string;
  body: unknown;
  status: number;
}

type Obj = { apiVersion?: string; kind?: string; metadata: Record<string, unknown> & { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string }; spec?: unknown; status?: unknown; [k: string]: unknown };

interface WatchEvent {
  rv: number;
  coll: string;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  obj: Obj;
}

export class FakeApiServer {
  readonly requests: RecordedRequest[] = [];
  /** Watches answered with 410 Gone. */
  expired = 0;
  private readonly store = new Map<string, Map<string, Obj>>();
  private readonly events: WatchEvent[] = [];
  private rv = 100;
  /** Watches from a version below this get 410 Gone. */
  private compactedBelow = 0;
  private readonly watchers = new Set<{ coll: string; selector: Record<string, string>; res: ServerResponse }>();
  private server: Server | undefined;
  /** Called after every change (the "kubelet" and "controllers" of a test hook in here). */
  onChange: ((type: WatchEvent['type'], resource: string, obj: Obj) => void) | undefined;

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    const a = this.server.address() as { port: number };
    return `http://127.0.0.1:${a.port}`;
  }

  async stop(): Promise<void> {
    this.dropWatches();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Forgets history (as etcd compaction does) and ends every watch: clients must relist. */
  compact(): void {
    this.compactedBelow = this.rv + 1;
    this.dropWatches();
  }

  dropWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  list(resource: string, namespace: string): Obj[] {
    return [...(this.store.get(`${namespace}/${resource}`)?.values() ?? [])];
  }

  get(resource: string, namespace: string, name: string): Obj | undefined {
    return this.store.get(`${namespace}/${resource}`)?.get(name);
  }

  /** Writes as a controller of the test would (no request recorded). */
  put(resource: string, namespace: string, obj: Obj): Obj {
    const coll = `${namespace}/${resource}`;
    const existing = this.store.get(coll)?.get(obj.metadata.name);
    return this.write(coll, resource, { ...obj, metadata: { ...obj.metadata, namespace } }, existing ? 'MODIFIED' : 'ADDED');
  }

  remove(resource: string, namespace: string, name: string): void {
    const coll = `${namespace}/${resource}`;
    const o = this.store.get(coll)?.get(name);
    if (!o) return;
    this.store.get(coll)!.delete(name);
    this.emit(coll, resource, 'DELETED', { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.rv) } });
  }

  private write(coll: string, resource: string, obj: Obj, type: 'ADDED' | 'MODIFIED'): Obj {
    const prev = this.store.get(coll)?.get(obj.metadata.name);
    const meta = { uid: prev?.metadata.uid ?? randomUUID(), creationTimestamp: prev?.metadata.creationTimestamp ?? new Date().toISOString(), generation: 1, ...obj.metadata, resourceVersion: String(++this.rv) } as Obj['metadata'];
    if (prev && JSON.stringify(prev.spec) !== JSON.stringify(obj.spec)) meta.generation = Number(prev.metadata.generation ?? 1) + 1;
    else if (prev) meta.generation = prev.metadata.generation;
    // Keys sorted, as the API server serializes an object it stores (Go maps): a client comparing
    // what it wrote with what it reads back must not depend on key order.
    const stored = sortKeys({ ...obj, metadata: meta }) as Obj;
    if (!this.store.has(coll)) this.store.set(coll, new Map());
    this.store.get(coll)!.set(obj.metadata.name, stored);
    this.emit(coll, resource, type, stored);
    return stored;
  }

  private emit(coll: string, resource: string, type: WatchEvent['type'], obj: Obj): void {
    const ev = { rv: this.rv, coll, type, obj };
    this.events.push(ev);
    for (const w of this.watchers) if (w.coll === coll && matches(obj, w.selector)) w.res.write(`${JSON.stringify({ type, object: obj })}\n`);
    this.onChange?.(type, resource, obj);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url!, 'http://x');
    const raw = await new Promise<string>((resolve) => {
      let s = '';
      req.on('data', (c) => (s += c));
      req.on('end', () => resolve(s));
    });
    const contentType = String(req.headers['content-type'] ?? '');
    const rec: RecordedRequest = { method: req.method!, path: url.pathname, query: Object.fromEntries(url.searchParams), contentType, body: undefined, status: 0 };
    this.requests.push(rec);
    const reply = (status: number, body: unknown): void => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const fail = (code: number, reason: string, message: string): void => reply(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code });
    try {
      if (raw) rec.body = contentType.includes('yaml') ? parseYaml(raw) : JSON.parse(raw);
    } catch {
      return fail(400, 'BadRequest', 'body is not valid JSON/YAML');
    }
    const discovery = RESOURCES.filter((r) => url.pathname === (r.gv.includes('/') ? `/apis/${r.gv}` : `/api/${r.gv}`));
    if (req.method === 'GET' && discovery.length > 0) {
      return reply(200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: discovery[0]!.gv, resources: discovery.map((r) => ({ name: r.name, singularName: r.kind.toLowerCase(), namespaced: true, kind: r.kind, verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] })) });
    }
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/([^/]+))\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?(?:\/(status))?$/.exec(url.pathname);
    const resource = m && RESOURCES.find((r) => r.name === m[4] && r.gv === (m[1] ? `${m[1]}/${m[2]}` : 'v1'));
    if (!m || !resource) return fail(404, 'NotFound', `no such path ${url.pathname}`);
    const [ns, name, sub] = [m[3]!, m[5], m[6]];
    const coll = `${ns}/${resource.name}`;
    const items = this.store.get(coll) ?? new Map<string, Obj>();
    const existing = name ? items.get(name) : undefined;
    const selector = parseSelector(url.searchParams.get('labelSelector'));
    const body = rec.body as Obj | undefined;

    if (req.method === 'GET' && !name) {
      if (url.searchParams.get('watch') === 'true') return this.watch(coll, selector, Number(url.searchParams.get('resourceVersion') || 0), rec, res);
      const list = [...items.values()].filter((o) => matches(o, selector));
      return reply(200, { kind: `${resource.kind}List`, apiVersion: resource.gv, metadata: { resourceVersion: String(this.rv) }, items: list });
    }
    if (req.method === 'GET') return existing ? reply(200, existing) : fail(404, 'NotFound', `${resource.name} "${name}" not found`);
    if (req.method === 'POST' && !name) {
      if (!body?.metadata) return fail(400, 'BadRequest', 'no metadata');
      const n = body.metadata.name || `${String(body.metadata.generateName ?? '')}${randomUUID().slice(0, 5)}`;
      if (items.has(n)) return fail(409, 'AlreadyExists', `${resource.name} "${n}" already exists`);
      return reply(201, this.write(coll, resource.name, { ...body, metadata: { ...body.metadata, name: n, namespace: ns } }, 'ADDED'));
    }
    if (req.method === 'PUT' && name) {
      if (!existing) return fail(404, 'NotFound', `${resource.name} "${name}" not found`);
      if (body?.metadata?.resourceVersion && body.metadata.resourceVersion !== existing.metadata.resourceVersion) return fail(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
      return reply(200, this.write(coll, resource.name, { ...body!, metadata: { ...body!.metadata, name, namespace: ns } }, 'MODIFIED'));
    }
    if (req.method === 'PATCH' && name) {
      if (contentType === 'application/apply-patch+yaml') {
        if (!url.searchParams.get('fieldManager')) return fail(400, 'BadRequest', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
        if (sub) return fail(400, 'BadRequest', 'apply to status not used by the operator');
        const base = existing ?? { apiVersion: body!.apiVersion, kind: body!.kind, metadata: { name, namespace: ns } };
        const merged = mergePatch(base, resource.status ? { ...body!, status: undefined } : body!) as Obj;
        // As the API server's StatefulSet validation: only some spec fields may change.
        if (resource.name === 'statefulsets' && existing) {
          const frozen = ['selector', 'serviceName', 'podManagementPolicy', 'volumeClaimTemplates'];
          const was = existing.spec as Record<string, unknown>;
          const now = merged.spec as Record<string, unknown>;
          if (frozen.some((f) => JSON.stringify(was[f]) !== JSON.stringify(now[f]))) {
            return fail(422, 'Invalid', `StatefulSet.apps "${name}" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden`);
          }
        }
        merged.metadata.managedFields = [{ manager: url.searchParams.get('fieldManager'), operation: 'Apply', apiVersion: body!.apiVersion }];
        if (resource.status && existing) merged.status = existing.status;
        return reply(existing ? 200 : 201, this.write(coll, resource.name, merged, existing ? 'MODIFIED' : 'ADDED'));
      }
      if (contentType !== 'application/merge-patch+json') return fail(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got ${contentType}`);
      if (!existing) return fail(404, 'NotFound', `${resource.name} "${name}" not found`);
      const patch = body as Record<string, unknown>;
      const next = sub === 'status' ? { ...existing, status: mergePatch(existing.status ?? {}, patch.status ?? {}) } : (mergePatch(existing, resource.status ? { ...patch, status: undefined } : patch) as Obj);
      return reply(200, this.write(coll, resource.name, next as Obj, 'MODIFIED'));
    }
    if (req.method === 'DELETE' && name) {
      if (!existing) return fail(404, 'NotFound', `${resource.name} "${name}" not found`);
      this.remove(resource.name, ns, name);
      return reply(200, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
    }
    if (req.method === 'DELETE' && !name) {
      for (const o of [...items.values()].filter((x) => matches(x, selector))) this.remove(resource.name, ns, o.metadata.name);
      return reply(200, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
    }
    return fail(405, 'MethodNotAllowed', `${req.method} ${url.pathname}`);
  }

  private watch(coll: string, selector: Record<string, string>, from: number, rec: RecordedRequest, res: ServerResponse): void {
    rec.status = 200;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    if (from > 0 && from < this.compactedBelow) {
      this.expired++;
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `too old resource version: ${from} (${this.compactedBelow})`, reason: 'Expired', code: 410 } })}\n`);
      return;
    }
    for (const ev of this.events) if (ev.coll === coll && ev.rv > from && matches(ev.obj, selector)) res.write(`${JSON.stringify({ type: ev.type, object: ev.obj })}\n`);
    const w = { coll, selector, res };
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
  }
}

function parseSelector(s: string | null): Record<string, string> {
  if (!s) return {};
  return Object.fromEntries(s.split(',').map((kv) => kv.split('=') as [string, string]));
}

function matches(o: Obj, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => o.metadata.labels?.[k] === v);
}

/** RFC 7386 JSON merge patch (null deletes; arrays replace). Undefined members are skipped. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}
