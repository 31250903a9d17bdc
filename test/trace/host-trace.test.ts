// End to end: `kvs trace` (eBPF on lo) on the default layout, where each of 3 `kvs host` processes
// runs one replica of every group and one connection between two processes carries every pair of
// replicas (protocol.md §6.5). Frames riding another pair's connection arrive inside CHANNEL
// frames: each must still be shown under its own group and replicas, and none may be undecodable.
// Ports 20400-20712.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { reapOnExit } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';
import { liveSkipReason } from './helpers/live.ts';
import { collectLines, parseJsonLines } from './helpers/scenario.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
const liveSkip = liveSkipReason();

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const gone = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill(signal);
  return gone;
}

describe('tracing the default layout', () => {
  it('kvs trace names every group and replica on connections shared between processes', { skip: liveSkip }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvs-host-trace-'));
    const upErr: string[] = [];
    const up = reapOnExit(spawn(process.execPath, [BIN, 'up', '--shards', '2', '--base-port', '20400', '--data', dir, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const upOut: string[] = [];
    collectLines(up.stdout!, upOut);
    collectLines(up.stderr!, upErr);
    let tracer: ChildProcess | undefined;
    try {
      await waitFor('kvs up to say ready', () => [...upOut, ...upErr].some((l) => l.includes('ready in')), 90_000);
      const cluster = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { replicas: { id: number; group: number }[] };
      const groupOf = new Map(cluster.replicas.map((r) => [r.id, r.group]));
      const out: string[] = [];
      const err: string[] = [];
      tracer = reapOnExit(spawn(process.execPath, [BIN, 'trace', '--data', dir, '--format', 'json', '--summary-every', '0'], { stdio: ['ignore', 'pipe', 'pipe'] }));
      collectLines(tracer.stdout!, out);
      collectLines(tracer.stderr!, err);
      await waitFor('the tracer to attach', () => err.some((l) => l.startsWith('trace: eBPF on lo')));
      // Writes to both shard groups: appends on every group's links, most of them riding.
      const bench = spawn(process.execPath, [BIN, 'bench', '--cluster', dir, '--rate', '100', '--warmup', '0', '--duration', '2'], { stdio: 'ignore' });
      assert.equal(await new Promise((r) => bench.once('exit', r)), 0, 'kvs bench failed');
      const carried = (group: number): boolean => parseJsonLines(out).msgs.some((l) => l.channel === true && l.group === group && l.msg === 'AppendEntries');
      await waitFor('appends of both shard groups carried in CHANNEL frames', () => carried(1) && carried(2));
      assert.equal(await stop(tracer, 'SIGINT'), 0, err.join('\n'));
      const { msgs, summaries } = parseJsonLines(out);
      // Every line names replicas of the group it names: a carried frame is never put on the
      // connection's own pair.
      for (const l of msgs) {
        if (l.group === null) continue;
        for (const id of [l.from, l.to]) if (id !== null) assert.equal(groupOf.get(id), l.group, `line names replica ${id} under group ${l.group}: ${JSON.stringify(l)}`);
      }
      for (const group of [1, 2]) {
        const lines = msgs.filter((l) => l.group === group && (l.msg === 'AppendEntries' || l.msg === 'AppendEntriesResp'));
        assert.ok(lines.length > 0, `no appends traced for group ${group}`);
        assert.ok(lines.every((l) => l.from !== null && l.to !== null && l.from !== l.to), `an append of group ${group} without both replicas named`);
      }
      const final = summaries.find((s) => s.final);
      assert.ok(final, 'no final summary');
      assert.equal(final.undecodable, 0, JSON.stringify(final));
    } finally {
      if (tracer) await stop(tracer, 'SIGKILL');
      await stop(up, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
