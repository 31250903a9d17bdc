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
    const allows = (g: string, rs: string, v: string): boolean => role.rules!.some((x) => x.apiGroups.includes(g) && x.resources.includes(rs) && x.verbs.includes(v));
    if (!allows(group, res, verb)) out.push(`${verb} ${group}/${res} ${r.path}`);
    // A server-side apply that creates the object is also authorized as a create.
    if (r.method === 'PATCH' && r.status === 201 && !allows(group, res, 'create')) out.push(`create ${group}/${res} ${r.path}`);
    // The OwnerReferencesPermissionEnforcement admission plugin (on in OpenShift and other
    // distributions): setting ownerReferences needs delete on the object; blockOwnerDeletion needs
    // update on the owner's finalizers subresource.
    const owners = ((r.body as { metadata?: { ownerReferences?: { apiVersion: string; kind: string; blockOwnerDeletion?: boolean }[] } } | undefined)?.metadata?.ownerReferences ?? []);
    if (owners.length > 0 && (r.method === 'PATCH' || r.method === 'POST' || r.method === 'PUT')) {
      if (!allows(group, resource, 'delete')) out.push(`delete ${group}/${resource} (to set ownerReferences) ${r.path}`);
      for (const o of owners.filter((x) => x.blockOwnerDeletion)) {
        const ownerGroup = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0]! : '';
        const plural = `${o.kind.toLowerCase()}s`;
        if (!allows(ownerGroup, `${plural}/finalizers`, 'update')) out.push(`update ${ownerGroup}/${plural}/finalizers (blockOwnerDeletion) ${r.path}`);
      }
    }
  }
  return [...new Set(out)];
}
