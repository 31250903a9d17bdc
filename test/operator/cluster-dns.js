// Cluster DNS for the operator's end-to-end test, preloaded (`node --import`) into the operator and
// every replica process: a pod's stable name `<set>-<ordinal>.<set>.<namespace>.svc[.cluster.local]`
// (the short form is what the operator and the pods name outside a cluster, where no resolv.conf
// gives the cluster domain: src/address/cluster-dns.ts) resolves to the loopback address the stand-in kubelet gives that pod (podIp), as the headless
// Service's DNS records would. Every other name resolves as usual. Plain JavaScript: replicas run
// from dist/ without a TypeScript loader.
import dns from 'node:dns';

const POD = /^(.+)-(\d+)\.([^.]+)\.[^.]+\.svc(?:\.cluster\.local)?$/;

/** The address of a store's pod: 127.1.<group id>.<ordinal + 1> (placement is group 0). */
export function podIp(group, ordinal) {
  return `127.1.${group}.${ordinal + 1}`;
}

/** `demo-shard-3-1.demo-shard-3.kvs.svc.cluster.local` → 127.1.3.2; not a pod's name → undefined. */
export function resolvePod(host) {
  const m = POD.exec(host);
  if (!m || m[1] !== m[3]) return undefined;
  const set = m[1];
  const group = /-placement$/.test(set) ? 0 : Number(/-shard-(\d+)$/.exec(set)?.[1] ?? NaN);
  return Number.isInteger(group) ? podIp(group, Number(m[2])) : undefined;
}

const lookup = dns.lookup;
dns.lookup = function podLookup(host, options, callback) {
  const cb = typeof options === 'function' ? options : callback;
  const opts = typeof options === 'object' && options !== null ? options : {};
  const ip = typeof host === 'string' ? resolvePod(host) : undefined;
  if (ip === undefined) return lookup.call(dns, host, options, callback);
  process.nextTick(() => (opts.all ? cb(null, [{ address: ip, family: 4 }]) : cb(null, ip, 4)));
  return {};
};
