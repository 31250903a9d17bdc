// Where `kvs up --processes N` puts each replica (SharedHosts.hostOf): with R replicas per group on
// R hosts every host holds one replica of every group, so one host lost never costs a quorum; a
// replica keeps its host; added replicas spread out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProcessPerReplica, SharedHosts, spawnChild } from '../../src/cli/replica-launcher.ts';

/** Ids as `kvs up` numbers them: group 0 → 1..R, group g → g*100+1..g*100+R. */
function ids(groups: number, perGroup: number): { id: number; group: number }[] {
  const out: { id: number; group: number }[] = [];
  for (let g = 0; g <= groups; g++) for (let j = 1; j <= perGroup; j++) out.push({ id: g === 0 ? j : g * 100 + j, group: g });
  return out;
}

test('R replicas per group on R hosts: every host holds one replica of every group', () => {
  for (const r of [1, 3, 5]) {
    const hosts = new SharedHosts(r);
    const placed = ids(3, r).map((x) => ({ ...x, host: hosts.hostOf(x.id, x.group) }));
    for (let k = 0; k < r; k++) assert.deepEqual(placed.filter((p) => p.host === k).map((p) => p.group), [0, 1, 2, 3], `host ${k} of ${r}`);
  }
});

test('no host holds a quorum of any group when there are at least as many hosts as replicas per group', () => {
  for (const [hostsN, perGroup] of [[3, 3], [5, 3], [5, 5], [7, 5]] as const) {
    const hosts = new SharedHosts(hostsN);
    const placed = ids(4, perGroup).map((x) => ({ ...x, host: hosts.hostOf(x.id, x.group) }));
    for (let g = 0; g <= 4; g++) {
      for (let k = 0; k < hostsN; k++) assert.ok(placed.filter((p) => p.group === g && p.host === k).length <= 1, `group ${g} twice on host ${k}`);
    }
  }
});

test('a replica keeps its host; an added replica goes where its group has fewest, then where fewest run', () => {
  const hosts = new SharedHosts(3);
  for (const x of ids(2, 3)) hosts.hostOf(x.id, x.group);
  assert.equal(hosts.hostOf(102, 1), hosts.hostOf(102, 1));
  const first = hosts.hostOf(104, 1); // every host has one of group 1 and three replicas: host 0
  assert.equal(first, 0);
  assert.equal(hosts.hostOf(105, 1), 1); // hosts 1 and 2 have one of group 1; host 1 first
  assert.equal(hosts.hostOf(301, 3), 2); // a new group: host 2 runs fewest now
  assert.equal(hosts.hostOf(104, 1), first);
});

// A spawn that fails (ENOENT here; EAGAIN or EMFILE on a loaded machine) emits 'error' and never
// 'exit': unheard, the error crashed kvs up, and the replica was never reported gone, so it was
// never restarted and a stop waited for it for good. Either launcher reports it as exited at once.
const MISSING = '/nonexistent/kvs-test-node';

/** Records each replica's onExit calls. */
function exits(): { calls: Map<number, unknown[][]>; on: (id: number) => (code: number | null, signal: NodeJS.Signals | null) => void } {
  const calls = new Map<number, unknown[][]>();
  return { calls, on: (id) => (code, signal) => void calls.set(id, [...(calls.get(id) ?? []), [code, signal]]) };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 50));

test('a process per replica whose spawn fails: reported exited once, no crash, stop does not wait', async () => {
  const launcher = new ProcessPerReplica(MISSING);
  const { calls, on } = exits();
  assert.equal(launcher.launch({ id: 101, group: 1, argv: [], label: 'shard-1/r101' }, on(101)), 0);
  launcher.launch({ id: 102, group: 1, argv: [], label: undefined }, on(102));
  await tick();
  assert.deepEqual(Object.fromEntries(calls), { 101: [[null, null]], 102: [[null, null]] });
  // Restarted (kvs up launches it again after its backoff): reported again.
  launcher.launch({ id: 101, group: 1, argv: [], label: undefined }, on(101));
  await tick();
  assert.equal(calls.get(101)!.length, 2);
  await launcher.stop(101);
  await launcher.stopAll();
  launcher.killAll();
});

test('a host process whose spawn fails: its replicas reported exited once, no crash, stop does not wait', async () => {
  const launcher = new SharedHosts(2, () => [MISSING]);
  const { calls, on } = exits();
  for (const id of [1, 2, 101]) launcher.launch({ id, group: id < 100 ? 0 : 1, argv: [], label: undefined }, on(id));
  const stopping = launcher.stop(1); // asked before the failure is known
  await tick();
  await stopping;
  assert.deepEqual(Object.fromEntries(calls), { 1: [[null, null]], 2: [[null, null]], 101: [[null, null]] });
  // A relaunch spawns its host anew (not a dead one kept as its host) and is reported again.
  launcher.launch({ id: 2, group: 0, argv: [], label: undefined }, on(2));
  await tick();
  assert.equal(calls.get(2)!.length, 2);
  await launcher.stop(2);
  await launcher.stopAll();
  launcher.killAll();
});

// Node throws some spawn failures instead of emitting them (E2BIG here: an argument over the
// kernel's limit; EPERM, ENOMEM alike). Thrown from kvs up's restart timer, one crashed kvs up.
test('a spawn that Node fails by throwing (E2BIG) is the same failed spawn, for either launcher', async () => {
  const huge = 'x'.repeat(3_000_000);
  const each = new ProcessPerReplica();
  const { calls, on } = exits();
  assert.equal(each.launch({ id: 101, group: 1, argv: [huge], label: undefined }, on(101)), 0);
  const hosts = new SharedHosts(1, () => ['env', huge]);
  hosts.launch({ id: 1, group: 0, argv: [], label: undefined }, on(1));
  await tick();
  assert.deepEqual(Object.fromEntries(calls), { 101: [[null, null]], 1: [[null, null]] });
  await each.stopAll();
  await hosts.stopAll();
  each.killAll();
  hosts.killAll();
});

test('a child whose spawn Node failed by throwing signals nothing when killed, as one whose failure Node emits', async () => {
  // Found in review of dfc6f41: the stand-in child (new ChildProcess()) kept a process handle that
  // never spawned, and its kill() signalled the pid in that handle's uninitialised memory: 0 (kvs
  // up's own process group) or any other. The handle's kill is replaced here so nothing is signalled.
  const thrown = spawnChild('env', ['x'.repeat(3_000_000)], { stdio: 'ignore' });
  const emitted = spawnChild(MISSING, [], { stdio: 'ignore' });
  const errors: string[] = [];
  for (const c of [thrown, emitted]) c.on('error', (e: NodeJS.ErrnoException) => void errors.push(e.code ?? e.message));
  const handle = (thrown as unknown as { _handle: { kill(signal: number): number } | null })._handle;
  const signalled: number[] = [];
  if (handle) handle.kill = (signal) => (signalled.push(signal), 0);
  assert.equal(thrown.kill('SIGTERM'), false);
  assert.deepEqual(signalled, [], 'no signal sent through the never-spawned handle');
  await tick();
  assert.equal(emitted.kill(0), false);
  assert.deepEqual(errors, ['E2BIG', 'ENOENT']);
  assert.equal(thrown.pid, undefined);
  assert.equal(thrown.connected, false);
});

test('a child whose spawn Node fails by emitting (ENOENT) signals nothing when killed before its error', async () => {
  // Found in review of the one guard (spawned): until its 'error' on the next tick, Node's own
  // failed child keeps the process handle that never spawned, and its kill() signalled pid 0 (our
  // own process group: seen under setsid) as the thrown failure's stand-in did. The launchers ask
  // running() first; spawnChild's kill() now applies the same guard to every child.
  const emitted = spawnChild(MISSING, [], { stdio: 'ignore' });
  const errors: string[] = [];
  emitted.on('error', (e: NodeJS.ErrnoException) => void errors.push(e.code ?? e.message));
  const handle = (emitted as unknown as { _handle: { kill(signal: number): number } | null })._handle;
  assert.ok(handle, 'the handle is still there before the error');
  const signalled: number[] = [];
  handle.kill = (signal) => (signalled.push(signal), 0);
  assert.equal(emitted.kill('SIGTERM'), false);
  assert.deepEqual(signalled, [], 'no signal sent through the never-spawned handle');
  await tick();
  assert.deepEqual(errors, ['ENOENT']);
});
