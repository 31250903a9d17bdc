// Real processes, real SIGKILL: a child writes under load and is killed at a random moment, again
// and again on the same store. After each kill the store must hold every entry the child reported
// as fsynced, and a state machine equal to the replay of the log up to its applied index.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openReplicaStore, openStore, type Command, type ReplicaStore } from '../../src/storage/index.ts';
import { CLIENTS, entryData, replay } from './crash-workload.ts';
import { b, CONF, entries, hs, openFresh, ready, tempDir } from './helpers.ts';
import { reapOnExit } from '../support/processes.ts';
import { childArgs } from '../support/child-script.ts';

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const KILLS = Number(process.env['STORAGE_CRASH_KILLS'] ?? 40);
const SEED = Number(process.env['STORAGE_CRASH_SEED'] ?? Date.now() % 1_000_000);

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Seeded, so a failing run can be replayed with STORAGE_CRASH_SEED. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/**
 * Runs the child until it has printed its start line, waits `delayMs`, kills it with SIGKILL and
 * returns every line it printed, and how long after the start line it ended. Rejects if it exits
 * on its own, unless `mayFinish`.
 */
function runAndKill(args: string[], delayMs: number, mayFinish = false): Promise<{ lines: string[]; ranMs: number; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = reapOnExit(spawn(process.execPath, [...childArgs(CHILD), ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const lines: string[] = [];
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    let started = 0;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      if (lines.length > 1) return;
      started = performance.now();
      if (Number.isFinite(delayMs)) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const ranMs = performance.now() - started;
      // Let readline drain what the child wrote before it died.
      setImmediate(() => {
        if (signal === 'SIGKILL') resolve({ lines, ranMs, killed: true });
        else if (mayFinish && code === 0) resolve({ lines, ranMs, killed: false });
        else reject(new Error(`child exited with ${code ?? signal} before the kill:\n${stderr}`));
      });
    });
  });
}

/** What a child reported about one store: durable entries (index → term) and the applied index. */
class Reported {
  durable = new Map<number, number>();
  applied = 0;
  persists = 0;
  applies = 0;
  last = 0;

  absorb(line: string): void {
    const [x, y, z] = line.split(' ').slice(1).map(Number);
    if (line.startsWith('P')) {
      for (const i of this.durable.keys()) if (i >= x!) this.durable.delete(i);
      for (let i = x!; i <= y!; i++) this.durable.set(i, z!);
      this.persists++;
    } else if (line.startsWith('A')) {
      this.applied = x!;
      this.applies++;
    } else if (!line.startsWith('C') && !line.startsWith('S')) assert.fail(`unexpected line ${line}`);
  }

  /** The store holds every reported entry and a state machine equal to the replay of its log; then what it holds is the new baseline. */
  async check(store: ReplicaStore, ctx: string): Promise<void> {
    const st = store.load(); // throws on any corruption or inconsistency
    const last = st.entries.at(-1)?.index ?? st.base.index;
    const onDisk = new Map(st.entries.map((e) => [e.index, e]));
    const maxReported = Math.max(0, ...this.durable.keys());
    assert.ok(last >= maxReported, `${ctx}: log ends at ${last}, but ${maxReported} was reported fsynced`);
    for (const [index, term] of this.durable) {
      if (index <= st.base.index) continue; // compacted into the state machine
      const e = onDisk.get(index);
      assert.ok(e, `${ctx}: entry ${index} reported fsynced is missing`);
      assert.ok(e.term >= term, `${ctx}: entry ${index} has term ${e.term}, reported ${term}`);
      if (e.term === term) assert.deepEqual(Buffer.from(e.data), entryData(index, term), `${ctx}: entry ${index} data`);
      // A higher term: an overwrite that was fsynced but not yet reported, never of applied entries.
      else assert.ok(index > this.applied, `${ctx}: applied entry ${index} was replaced`);
    }
    assert.ok(st.applied >= this.applied, `${ctx}: applied ${st.applied} < reported ${this.applied}`);
    assert.ok(st.applied <= last && st.base.index <= st.applied, `${ctx}: applied ${st.applied} outside the log`);

    // The state machine is exactly the replay of 1..applied: nothing missing, nothing beyond.
    const expected = replay(st.applied);
    const { items, more } = store.scan(Buffer.of(0), null, 100_000);
    assert.equal(more, null);
    const actual = new Map(items.map((kv) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString()]));
    assert.deepEqual(actual, expected.kv, `${ctx}: state machine differs from the replay of 1..${st.applied}`);
    for (let c = 0; c < CLIENTS; c++) {
      const seq = expected.sessions.get(`c${c}`);
      assert.equal(store.getSession(b(`c${c}`))?.seq, seq, `${ctx}: session c${c}`);
    }
    store.verifyStateMachine();
    await store.close();

    this.durable = new Map(st.entries.map((e) => [e.index, e.term]));
    this.applied = st.applied;
    this.last = last;
  }
}

/** `kills` runs of the log workload on `stores` stores (in one shared environment if `shared`), each killed at a random moment. */
async function killRepeatedly(stores: number, kills: number, seed: number, shared: boolean): Promise<Reported[]> {
  const dir = tempDir('crash');
  dirs.push(dir);
  const replicaDirs = Array.from({ length: stores }, (_, k) => join(dir, `r${k}`));
  const sharedDir = shared ? join(dir, 'shared') : undefined;
  const random = rng(seed);
  const reported = replicaDirs.map(() => new Reported());
  for (let kill = 0; kill < kills; kill++) {
    const delay = 20 + Math.floor(random() * 400);
    const { lines } = await runAndKill(['log', replicaDirs.join(','), String(Math.floor(random() * 2 ** 31)), ...(sharedDir ? [sharedDir] : [])], delay);
    for (const line of lines) {
      const k = Number(line.slice(0, line.indexOf(' ')));
      assert.ok(reported[k], `unexpected line ${line}`);
      reported[k].absorb(line.slice(line.indexOf(' ') + 1));
    }
    for (const [k, path] of replicaDirs.entries()) {
      const ctx = `store ${k} after kill ${kill + 1} (seed ${seed}, ${delay} ms)`;
      await reported[k]!.check(await openStore({ path }), ctx);
    }
  }
  return reported;
}

describe('crash safety under SIGKILL', () => {
  it(`keeps every fsynced entry and an exact state machine across ${KILLS} kills (seed ${SEED})`, async () => {
    const [r] = await killRepeatedly(1, KILLS, SEED, false);
    console.log(`# ${KILLS} kills: ${r!.persists} reported persists, ${r!.applies} applies, log at ${r!.last}, applied ${r!.applied}`);
    assert.ok(r!.persists > KILLS, 'the children did write under load');
  });

  it(`two stores sharing one environment keep theirs across ${Math.ceil(KILLS / 2)} kills of their process (seed ${SEED})`, async () => {
    const reported = await killRepeatedly(2, Math.ceil(KILLS / 2), SEED + 2, true);
    for (const [k, r] of reported.entries()) {
      console.log(`# store ${k}: ${r.persists} reported persists, ${r.applies} applies, log at ${r.last}, applied ${r.applied}`);
      assert.ok(r.persists > KILLS / 2, `store ${k}: the children did write under load`);
    }
  });

  it('a snapshot install killed at any point leaves the old state or the new one, never a mix', async () => {
    // Source image: 20 000 keys at applied 10. Target: its own small state at applied 4.
    const sourceDir = tempDir('install-source');
    const pristine = tempDir('install-pristine');
    const targetDir = join(tempDir('install-target'), 'store');
    dirs.push(sourceDir, pristine, targetDir.replace(/\/store$/, ''));
    const source = openFresh(sourceDir);
    await source.persist(ready({ entries: entries(1, 10, 1), hardState: hs(1, 10) }));
    const cmds: Command[] = Array.from({ length: 20_000 }, (_, i) => ({ type: 'ops', ops: [{ type: 'put', key: b(`key-${i}`), value: Buffer.alloc(64, i % 251) }] }));
    await source.apply(10, cmds);
    await source.close();
    const target = openFresh(pristine);
    await target.persist(ready({ entries: entries(1, 4, 1), hardState: hs(1, 4) }));
    await target.apply(4, [{ type: 'ops', ops: [{ type: 'put', key: b('mine'), value: b('old') }] }]);
    await target.close();

    const random = rng(SEED + 1);
    const seen = { old: 0, new: 0 };
    const reset = (): void => {
      fs.rmSync(targetDir, { recursive: true, force: true });
      fs.cpSync(pristine, targetDir, { recursive: true });
    };
    // One undisturbed run tells how long the whole transfer takes on this machine, so the kills
    // spread over all of it (staging, the install itself, and just after) whatever its speed.
    reset();
    const { ranMs } = await runAndKill(['install', targetDir, sourceDir], Infinity, true);
    for (let kill = 0; kill < 20; kill++) {
      reset();
      const delay = Math.floor(random() * ranMs * 1.5);
      const { lines } = await runAndKill(['install', targetDir, sourceDir], delay, true);
      const s = openReplicaStore({ path: targetDir });
      const st = s.load();
      if (st.applied === 4) {
        assert.ok(!lines.some((l) => l.startsWith('I')), 'install reported but not on disk');
        assert.equal(s.count(), 1);
        assert.deepEqual(Buffer.from(s.get(b('mine'))!), b('old'));
        assert.equal(st.entries.length, 4);
        seen.old++;
      } else {
        assert.equal(st.applied, 10);
        assert.deepEqual(st.base, { index: 10, term: 1, conf: CONF });
        assert.equal(s.count(), 20_000);
        assert.equal(s.get(b('mine')), null);
        assert.deepEqual(Buffer.from(s.get(b('key-19999'))!), Buffer.alloc(64, 19999 % 251));
        seen.new++;
      }
      s.verifyStateMachine();
      await s.close();
    }
    console.log(`# install kills: ${seen.old} left the old state, ${seen.new} the new one`);
  });
});
