// `kvs kvstore status`: a KVStore's progress as a person reads it, pure.
import type { KVStore, KVStoreStatus } from './spec.ts';

export function formatKVStore(kv: KVStore, now: Date): string {
  const s: KVStoreStatus = kv.status ?? {};
  const spec = (kv.spec ?? {}) as { shards?: number; replicas?: number; image?: string; partitions?: number };
  const out: string[] = [];
  out.push(`kvstore ${kv.metadata.name}${kv.metadata.namespace ? ` (namespace ${kv.metadata.namespace})` : ''}: ${s.phase ?? 'Pending'}${s.currentStep ? ` — ${s.currentStep}` : ''}`);
  out.push(`  spec: ${spec.shards ?? '?'} shards × ${spec.replicas ?? 3} replicas, image ${spec.image ?? '?'}, ${spec.partitions ?? 1024} partitions`);
  const gen = kv.metadata.generation;
  const behind = gen !== undefined && s.observedGeneration !== gen;
  out.push(`  generation ${gen ?? '?'}, observed ${s.observedGeneration ?? 'never'}${behind ? ' (the operator has not seen the latest change yet)' : ''}${s.epoch ? `, configuration epoch ${s.epoch}` : ''}`);
  if (s.partitionsMoving) out.push(`  partitions moving: ${s.partitionsMoving}`);
  if (s.groups?.length) {
    const rows = [['GROUP', 'ROLE', 'REPLICAS', 'READY', 'VOTERS', 'LEADER', 'PARTITIONS', 'IMAGE']];
    for (const g of s.groups) rows.push([g.name, g.role, String(g.replicas), String(g.readyReplicas), g.voters.join(',') || '-', g.leader ?? '-', g.partitions === undefined ? '-' : String(g.partitions), g.image ?? '-']);
    out.push(...table(rows).map((l) => `  ${l}`));
  }
  if (s.conditions?.length) {
    out.push('  conditions:');
    const rows = s.conditions.map((c) => [c.type, c.status, c.reason, `${ago(c.lastTransitionTime, now)}`, c.message]);
    out.push(...table(rows).map((l) => `    ${l}`));
  }
  for (const a of s.membershipInFlight ?? []) out.push(`  in flight: ${a.kind === 'add-member' ? 'add' : 'remove'} replica ${a.replicaId} of shard group ${a.group}`);
  if (s.lastError) out.push(`  last error (retried with back-off): ${s.lastError}`);
  return out.join('\n');
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

function ago(iso: string, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  if (!Number.isFinite(s)) return '?';
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}
