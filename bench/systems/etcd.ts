// A 3-member etcd cluster on 127.0.0.1 (Debian's etcd-server 3.4), default settings (fsync on
// every commit, 100 ms heartbeats), data in the run directory.
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { logTail, start, waitFor, type Managed } from './procs.ts';

const run = promisify(execFile);

export interface EtcdCluster {
  clients: string[];
  members: Managed[];
  pids(): number[];
  /** Client address of the current leader. */
  leader(): Promise<string>;
  stop(): Promise<void>;
}

/** Client port base+i, peer port base+10+i, for i = 1..3. */
export async function startEtcd(dir: string, basePort: number, members = 3): Promise<EtcdCluster> {
  const ids = Array.from({ length: members }, (_, i) => i + 1);
  const peer = (i: number): string => `http://127.0.0.1:${basePort + 10 + i}`;
  const client = (i: number): string => `127.0.0.1:${basePort + i}`;
  const initial = ids.map((i) => `m${i}=${peer(i)}`).join(',');
  mkdirSync(dir, { recursive: true });
  const procs = ids.map((i) =>
    start(`etcd-m${i}`, 'etcd', [
      '--name', `m${i}`,
      '--data-dir', join(dir, `m${i}`),
      '--listen-client-urls', `http://${client(i)}`,
      '--advertise-client-urls', `http://${client(i)}`,
      '--listen-peer-urls', peer(i),
      '--initial-advertise-peer-urls', peer(i),
      '--initial-cluster', initial,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', 'kvs-bench',
      '--logger', 'zap',
      '--log-level', 'warn',
    ], { log: join(dir, `m${i}.log`) }),
  );
  const clients = ids.map(client);
  const cluster: EtcdCluster = {
    clients,
    members: procs,
    pids: () => procs.map((p) => p.pid),
    leader: async () => {
      const { stdout } = await run('etcdctl', ['--endpoints', clients.join(','), 'endpoint', 'status', '-w', 'json'], { timeout: 10_000 });
      // Member ids are u64: keep them as strings (JSON.parse would round them).
      const rows = JSON.parse(stdout.replace(/"(member_id|leader|cluster_id)":(\d+)/g, '"$1":"$2"')) as { Endpoint: string; Status: { header: { member_id: string }; leader: string } }[];
      const l = rows.find((r) => r.Status.header.member_id === r.Status.leader);
      if (!l) throw new Error('etcd has no leader');
      return l.Endpoint;
    },
    stop: async () => void (await Promise.all(procs.map((p) => p.stop()))),
  };
  await waitFor('etcd to be healthy', 30_000, async () => {
    for (const p of procs) if (!p.running()) throw new Error(`${p.name} exited:\n${logTail(p)}`);
    await run('etcdctl', ['--endpoints', clients.join(','), 'endpoint', 'health'], { timeout: 5000 });
    return true;
  });
  return cluster;
}
