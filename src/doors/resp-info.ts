// INFO for the RESP door: the sections tools read (server, clients, replication, keyspace) in
// Redis's "field:value" format, with the Raft view of replication, plus a kvs section.
import os from 'node:os';
import type { RespServer } from './resp-command.ts';
import { KVS_VERSION } from '../version.ts';

/** The Redis version whose command set and replies this door follows (tools check it). */
export const REDIS_COMPAT_VERSION = '7.0.0';

const DEFAULT_SECTIONS = ['server', 'clients', 'replication', 'keyspace'];
const ALL_SECTIONS = [...DEFAULT_SECTIONS, 'kvs'];

function portOf(address: string): string {
  return address.slice(address.lastIndexOf(':') + 1);
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}

/** Which sections `INFO a b c` asks for ("default", "all" and "everything" included). */
export function infoSections(args: string[]): string[] {
  if (args.length === 0) return DEFAULT_SECTIONS;
  const out = new Set<string>();
  for (const a of args.map((s) => s.toLowerCase())) {
    if (a === 'default') DEFAULT_SECTIONS.forEach((s) => out.add(s));
    else if (a === 'all' || a === 'everything') ALL_SECTIONS.forEach((s) => out.add(s));
    else out.add(a);
  }
  return ALL_SECTIONS.filter((s) => out.has(s));
}

export function infoText(sections: string[], server: RespServer): string {
  const st = server.ctx.status();
  const parts: string[] = [];
  for (const section of sections) {
    const lines: string[] = [];
    switch (section) {
      case 'server':
        lines.push(
          `redis_version:${REDIS_COMPAT_VERSION}`,
          `kvs_version:${KVS_VERSION}`,
          'redis_mode:standalone',
          `os:${os.type()} ${os.release()} ${os.arch()}`,
          `arch_bits:${process.arch.includes('64') ? 64 : 32}`,
          `process_id:${process.pid}`,
          `tcp_port:${portOf(server.address)}`,
          `uptime_in_seconds:${Math.floor(st.uptimeSeconds)}`,
          `uptime_in_days:${Math.floor(st.uptimeSeconds / 86400)}`,
        );
        break;
      case 'clients':
        lines.push(`connected_clients:${server.connections()}`);
        break;
      case 'replication':
        if (st.role === 'leader') {
          const followers = st.peers.filter((p) => p.id !== st.replicaId);
          lines.push('role:master', `connected_slaves:${followers.filter((p) => p.connected !== false).length}`);
          followers.forEach((p, i) => {
            const lag = p.match === undefined ? 0 : Math.max(0, st.lastIndex - p.match);
            lines.push(`slave${i}:ip=${hostOf(p.address)},port=${portOf(p.address)},state=${p.connected === false ? 'offline' : 'online'},offset=${p.match ?? 0},lag=${lag}`);
          });
          lines.push(`master_repl_offset:${st.commitIndex}`);
        } else {
          const known = st.leaderId !== 0 && st.leaderAddr !== '';
          lines.push(
            'role:slave',
            `master_host:${known ? hostOf(st.leaderAddr) : ''}`,
            `master_port:${known ? portOf(st.leaderAddr) : 0}`,
            `master_link_status:${known ? 'up' : 'down'}`,
            'master_sync_in_progress:0',
            `slave_repl_offset:${st.appliedIndex}`,
            `master_repl_offset:${st.commitIndex}`,
          );
        }
        lines.push(`raft_role:${st.role}`, `raft_term:${st.term}`, `raft_leader_id:${st.leaderId}`, `raft_commit_index:${st.commitIndex}`, `raft_applied_index:${st.appliedIndex}`);
        break;
      case 'keyspace': {
        const keys = server.ctx.keyCount();
        if (keys > 0) lines.push(`db0:keys=${keys},expires=0,avg_ttl=0`);
        break;
      }
      case 'kvs':
        lines.push(
          `replica_id:${st.replicaId}`,
          `group_id:${st.groupId}`,
          `partition_epoch:${st.epoch}`,
          `log_first_index:${st.firstIndex}`,
          `log_last_index:${st.lastIndex}`,
          ...Object.entries(st.endpoints).map(([door, addr]) => `endpoint_${door}:${addr}`),
          `resp_write_batches:${server.writes.stats.batches}`,
          `resp_write_batched_puts:${server.writes.stats.puts}`,
          `resp_write_stale:${server.writes.stats.stale}`,
        );
        break;
      default:
        continue;
    }
    parts.push(`# ${section[0]!.toUpperCase()}${section.slice(1)}\r\n${lines.map((l) => `${l}\r\n`).join('')}`);
  }
  return parts.join('\r\n');
}
