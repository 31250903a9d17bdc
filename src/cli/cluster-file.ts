// DIR/cluster.json: what `kvs up` started, so client commands and tests find the cluster.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ClusterReplica {
  id: number;
  group: number;
  /** 'placement': holds the cluster configuration, not user data (clients do not send keys there). */
  role?: 'placement' | 'shard';
  /** Added to a running group (`kvs replica add`): started with --join (matters only while its data directory is empty). */
  join?: boolean;
  pid: number;
  dataDir: string;
  endpoints: { native: string } & Record<string, string>;
}

/** Replicas that serve user keys (in a single-group cluster: all of them). */
export function dataReplicas(replicas: ClusterReplica[]): ClusterReplica[] {
  return replicas.filter((r) => r.role !== 'placement');
}

export function placementEndpoints(replicas: ClusterReplica[]): string[] {
  return replicas.filter((r) => r.role === 'placement').map((r) => r.endpoints.native);
}

export interface ClusterFile {
  replicas: ClusterReplica[];
}

/** Where `kvs up` keeps the layout while the cluster is not serving yet (cluster.json appears once it does). */
export const STARTING_FILE = 'cluster.starting.json';

export function clusterPath(dataDir: string, file = 'cluster.json'): string {
  return join(dataDir, file);
}

export function readCluster(dataDir: string, file?: string): ClusterReplica[] {
  const p = clusterPath(dataDir, file);
  if (!existsSync(p)) return [];
  let parsed: ClusterFile;
  try {
    parsed = JSON.parse(readFileSync(p, 'utf8')) as ClusterFile;
  } catch (e) {
    throw new Error(`${p} is not a cluster file (${(e as Error).message}): remove it, or restore the one kvs up wrote`);
  }
  return parsed.replicas ?? [];
}

/** Written atomically (rename), so a reader never sees half a file; cluster.json replaces the starting file. */
export function writeCluster(dataDir: string, replicas: ClusterReplica[], file?: string): void {
  const p = clusterPath(dataDir, file);
  writeFileSync(`${p}.tmp`, `${JSON.stringify({ replicas }, null, 2)}\n`);
  renameSync(`${p}.tmp`, p);
  if (file === undefined) rmSync(clusterPath(dataDir, STARTING_FILE), { force: true });
}

/** Back to "starting": cluster.json (from an earlier run) becomes the starting file until the cluster serves again. */
export function unpublishCluster(dataDir: string): void {
  renameSync(clusterPath(dataDir), clusterPath(dataDir, STARTING_FILE));
}
