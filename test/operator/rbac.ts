// Which requests recorded by the fake API server the operator's Role (kustomize/operator/rbac.yaml)
// allows: method + path → (API group, resource[/subresource], verb), as the API server's RBAC
// authorizer maps them. Discovery (non-resource URLs) is open to every authenticated client.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { RecordedRequest } from './fake-apiserver.ts';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const role = parseAllDocuments(readFileSync(new URL('../../kustomize/operator/rbac.yaml', import.meta.url), 'utf8'))
  .map((d) => d.toJSON() as { kind: string; rules?: Rule[] })
  .find((d) => d.kind === 'Role')!;

/** The requests the Role does not allow, as "verb group/resource path". */
export function forbidden(requests: RecordedRequest[]): string[] {
  const out: string[] = [];
  for (const r of requests) {
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/namespaces\/[^/]+\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(r.path);
    if (!m) continue; // discovery
    const [group, resource, name, sub] = [m[1] ?? '', m[2]!, m[3], m[4]];
    const verb = { GET: name ? 'get' : r.query.watch === 'true' ? 'watch' : 'list', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: name ? 'delete' : 'deletecollection' }[r.method] ?? r.method;
    const res = sub ? `${resource}/${sub}` : resource;
    const ok = role.rules!.some((x) => x.apiGroups.includes(group) && x.resources.includes(res) && x.verbs.includes(verb));
    if (!ok) out.push(`${verb} ${group}/${res} ${r.path}`);
  }
  return [...new Set(out)];
}
