// The cluster DNS domain (kubelet --cluster-domain, `cluster.local` by default but not everywhere),
// as the kubelet tells every pod: a pod with dnsPolicy ClusterFirst gets an /etc/resolv.conf whose
// search list starts `<namespace>.svc.<domain> svc.<domain> <domain>` (then the node's own search
// domains), with `options ndots:5` (kubelet pkg/kubelet/network/dns). Pure: the caller reads the file.
// docs/kubernetes.md "Peers' names on any cluster domain".

/** The search list of a resolv.conf text: the last `search` or `domain` line, as glibc reads it. */
export function searchDomains(resolvConf: string): string[] {
  let out: string[] = [];
  for (const raw of resolvConf.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const m = /^(search|domain)\s+(.*)$/.exec(line);
    if (m) out = m[2]!.split(/\s+/).filter((d) => d !== '').map((d) => d.replace(/\.$/, ''));
  }
  return out;
}

/**
 * The domain earlier versions put in every peer's name (svc.cluster.local was fixed), and the
 * kubelet's default --cluster-domain: used when the search list names none, so that the names a
 * cluster persisted (placement configuration, Raft membership, the operator's status) stay the same
 * whatever a pod's or the operator's dnsPolicy (spec.podTemplate may set None or hostNetwork).
 */
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/**
 * The cluster domain the kubelet wrote into this search list: D where `<namespace>.svc.D svc.D D`
 * follow each other (all three: with the pair alone, namespace `svc` would give `svc.svc.D svc.D`
 * and the domain `svc.D`); undefined when there is none (no resolv.conf, a pod with dnsPolicy
 * Default or None, a process outside a cluster).
 */
export function clusterDomain(resolvConf: string | undefined): string | undefined {
  const search = searchDomains(resolvConf ?? '');
  for (let i = 0; i + 2 < search.length; i++) {
    const d = search[i + 2]!;
    if (search[i + 1] === `svc.${d}` && search[i]!.endsWith(`.svc.${d}`)) return d;
  }
  return undefined;
}

/**
 * A pods' DNS suffix with the cluster domain put in: `<namespace>.svc` (what the manifests give,
 * domain-free) becomes `<namespace>.svc.<domain>`, the domain resolv.conf names or else
 * DEFAULT_CLUSTER_DOMAIN, so peer names are the same fully qualified names on every domain
 * (`cluster.local`: the names earlier versions wrote into Raft and placement configurations). A
 * suffix already qualified is returned as given.
 */
export function completeDnsSuffix(suffix: string, resolvConf: string | undefined): string {
  const trimmed = suffix.replace(/\.$/, '');
  if (!/(^|\.)svc$/.test(trimmed)) return suffix;
  return `${trimmed}.${clusterDomain(resolvConf) ?? DEFAULT_CLUSTER_DOMAIN}`;
}
