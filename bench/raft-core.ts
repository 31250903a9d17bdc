// Micro-benchmark of the pure Raft core: committed proposals per second of 3 in-memory nodes,
// no I/O, one proposal per round trip vs batches. Not a test.
//   node --import tsx bench/raft-core.ts [--seconds 2]
import { RaftNode, defaultRaftConfig } from '../src/raft/node.ts';
import type { Message, SnapshotSource } from '../src/raft/types.ts';
import { machine, printResult } from './machine.ts';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 2;
const payload = new Uint8Array(100).fill(120);

const noSnapshots: SnapshotSource = {
  capture: () => 0,
  read: () => ({ data: new Uint8Array(0), next: null }),
  release: () => {},
};

/** The thinnest possible shell: the core's own log is the "disk", messages go straight to peers. */
function cluster(): RaftNode[] {
  let seed = 1;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const conf = { voters: [1, 2, 3], learners: [] };
  return [1, 2, 3].map(
    (id) =>
      new RaftNode(
        { ...defaultRaftConfig, id, random, snapshots: noSnapshots },
        { hardState: { term: 0, vote: 0, commit: 0 }, base: { index: 0, term: 0, conf }, entries: [], applied: 0 },
      ),
  );
}

function run(batch: number): { opsPerS: number; appendsPerOp: number } {
  const nodes = cluster();
  let appends = 0;
  let applied = 0;
  const inbox: Message[] = [];
  const pump = (): void => {
    for (;;) {
      for (const n of nodes) {
        if (!n.hasReady()) continue;
        const rd = n.ready();
        for (const m of rd.messages) {
          if (m.type === 5) appends++;
          inbox.push(m);
        }
        if (n === leader) applied += rd.committedEntries.length;
        n.advance(rd);
      }
      if (inbox.length === 0) return;
      for (const m of inbox.splice(0)) nodes[m.to - 1]!.step(m);
    }
  };
  let leader: RaftNode | undefined;
  while (!leader) {
    for (const n of nodes) n.tick();
    pump();
    leader = nodes.find((n) => n.status.role === 'leader');
  }
  pump();
  applied = 0;
  appends = 0;
  let committed = 0;
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  while (performance.now() < deadline) {
    for (let i = 0; i < batch; i++) leader.propose(payload);
    pump();
    committed += batch;
    if (committed % 8192 < batch) for (const n of nodes) n.compact(n.status.applied - 1000);
  }
  if (applied < committed) throw new Error(`only ${applied} of ${committed} proposals applied`);
  const elapsed = (performance.now() - start) / 1000;
  return { opsPerS: committed / elapsed, appendsPerOp: appends / committed };
}

console.log(`# raft core, 3 in-memory nodes, 100-byte proposals, ${seconds}s per case`);
console.log(`# ${machine()}`);
console.log(`# command: node --import tsx bench/raft-core.ts --seconds ${seconds}`);
const base = run(1);
for (const batch of [1, 16, 256]) {
  const r = batch === 1 ? base : run(batch);
  console.log(
    `batch ${String(batch).padStart(4)}: ${Math.round(r.opsPerS).toLocaleString('en-US').padStart(10)} committed/s` +
      `  (${r.appendsPerOp.toFixed(3)} append msgs per proposal, ${(r.opsPerS / base.opsPerS).toFixed(1)}x batch 1)`,
  );
  printResult({ bench: 'raft-core', system: 'sharded-kvs', batch, ops_per_s: Math.round(r.opsPerS) });
}
