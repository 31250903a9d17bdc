// INFO for the RESP door: the sections tools read (server, clients, memory, persistence, stats,
// replication, keyspace) in Redis's "field:value" format, with the Raft view of replication, plus a kvs section.
import os from 'node:os';
import type { RespServer } from './resp-command.ts';
import { KVS_VERSION } from '../version.ts';

/** The Redis version whose command set and replies this door follows (tools check it). */
export const REDIS_COMPAT_VERSION = '7.0.0';

// Redis's default order. memory, persistence and stats carry the fields redis-cli --stat reads
// (used_memory, blocked_clients, total_commands_processed, ...): without them it printed
// -9223372036854775808 in every column but keys and clients.
const DEFAULT_SECTIONS = ['server', 'clients', 'memory', 'persistence', 'stats', 'replication', 'keyspace'];
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

/** As Redis writes sizes in INFO: 1.50K, 2.00M, ... */
function humanBytes(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n}B` : `${v.toFixed(2)}${units[i]}`;
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
        lines.push(`connected_clients:${server.connections()}`, 'blocked_clients:0');
        break;
      case 'memory': {
        // The whole process's (it may hold several replicas); Redis's used_memory is its allocator's.
        const m = process.memoryUsage();
        const used = m.heapUsed + m.external;
        lines.push(
          `used_memory:${used}`,
          `used_memory_human:${humanBytes(used)}`,
          `used_memory_rss:${m.rss}`,
          `used_memory_rss_human:${humanBytes(m.rss)}`,
          'maxmemory:0',
          'maxmemory_human:0B',
          'maxmemory_policy:noeviction',
        );
        break;
      }
      case 'persistence':
        // Every write is in the Raft log (fsynced) before it is answered: no snapshots or rewrites to report.
        lines.push('loading:0', 'rdb_bgsave_in_progress:0', 'aof_enabled:0', 'aof_rewrite_in_progress:0');
        break;
      case 'stats':
        // This door's, since it started or the last CONFIG RESETSTAT.
        lines.push(
          `total_connections_received:${server.stats.connectionsReceived}`,
          `total_commands_processed:${server.stats.commandsProcessed}`,
          'expired_keys:0',
          'evicted_keys:0',
        );
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
          `resp_write_waits:${server.writes.stats.waits}`,
        );
        break;
      default:
        continue;
    }
    parts.push(`# ${section[0]!.toUpperCase()}${section.slice(1)}\r\n${lines.map((l) => `${l}\r\n`).join('')}`);
  }
  return parts.join('\r\n');
}
