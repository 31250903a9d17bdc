// End to end: a real 3-replica group, traced three ways, must show the same decoded story —
// elections (PreVote, RequestVote, TimeoutNow), appends with entries, a forwarded write and its
// answer, with replica names, group, terms and indexes:
//   1. `kvs trace` (eBPF on lo, a separate process) watching the group's ports;
//   2. `kvs server --trace` with every capability dropped (setpriv): the in-process tap, after
//      exactly one warning line per replica start;
//   3. `kvs server --trace` as root: eBPF inside each replica, for what that replica sends.
// Every replica and tracer is stopped at the end, and the BPF programs they attached are gone.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { TestCluster } from '../server/cluster.ts';
import { liveSkipReason } from './helpers/live.ts';
import { checkScenarioLines, collectLines, parseJsonLines, runScenario, waitFor, type MsgLine, type SummaryLine } from './helpers/scenario.ts';
import { reapOnExit } from '../support/processes.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
const liveSkip = liveSkipReason();

function setprivSkip(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'needs root to drop capabilities from';
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'setpriv (util-linux) not installed';
  return undefined;
}
const tapSkip = setprivSkip();
if (tapSkip !== undefined && process.env.KVS_TRACE_REQUIRE === '1') throw new Error(`tap trace test cannot run: ${tapSkip}`);
if (tapSkip !== undefined) console.log(`# tap trace test skipped: ${tapSkip}`);

const replicasFlag = (base: number): string => [1, 2, 3].map((i) => `${i}=127.0.0.1:${base + i}`).join(',');

/** Program ids from "trace: eBPF on lo (tcx), ports a-b, progs 12/13" lines. */
function progIds(stderr: string): number[] {
  return [...stderr.matchAll(/progs (\d+)\/(\d+)/g)].flatMap((m) => [Number(m[1]), Number(m[2])]);
}

function assertProgsGone(ids: number[]): void {
  assert.ok(ids.length > 0, 'no program ids were reported');
  for (const id of ids) {
    const r = spawnSync('bpftool', ['prog', 'show', 'id', String(id)], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, `BPF program ${id} is still loaded:\n${r.stdout}`);
  }
}

/** SIGTERM every running replica (a graceful stop prints the final summary), then clean up. */
async function stopGracefully(c: TestCluster): Promise<void> {
  for (const id of c.ids) await c.kill(id, 'SIGTERM');
  await c.stop();
}

const allStdout = (c: TestCluster): string[] => [...c.stdout.values()].flat();
const msgsOf = (c: TestCluster) => (): MsgLine[] => parseJsonLines(allStdout(c)).msgs;
const summariesOf = (c: TestCluster) => (): SummaryLine[] => parseJsonLines(allStdout(c)).summaries;

describe('tracing a live group', () => {
  it('kvs trace (eBPF, standalone) shows elections, appends, forwards with names and indexes', { skip: liveSkip }, async () => {
    const base = 26100;
    const out: string[] = [];
    const err: string[] = [];
    const tracer: ChildProcess = reapOnExit(spawn(process.execPath, [BIN, 'trace', '--replicas', replicasFlag(base), '--format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    collectLines(tracer.stdout!, out);
    collectLines(tracer.stderr!, err);
    const exited = new Promise<number | null>((r) => tracer.on('exit', (code) => r(code)));
    let cluster: TestCluster | undefined;
    try {
      await waitFor('the tracer to attach', () => err.some((l) => l.startsWith('trace: eBPF on lo')));
      cluster = await TestCluster.start({ basePort: base });
      const result = await runScenario(cluster, () => parseJsonLines(out).msgs, () => parseJsonLines(out).summaries);
      await cluster.stop();
      tracer.kill('SIGINT');
      assert.equal(await exited, 0, err.join('\n'));
      const { msgs, summaries } = parseJsonLines(out);
      checkScenarioLines(msgs, result, cluster.ids, { allowPartial: true });
      // Replica HELLOs name the dialer and its group.
      assert.ok(msgs.some((l) => l.msg === 'Hello' && l.replica === l.from && l.group === 0));
      const final = summaries.find((s) => s.final);
      assert.ok(final, 'no final summary');
      assert.equal(final.source, 'ebpf');
      assert.equal(final.undecodable, 0, JSON.stringify(final));
      assert.equal(final.partial, msgs.filter((l) => l.partial).length, 'partial lines are counted');
      assert.equal(final.lines, msgs.length);
      assert.ok((final.hidden as number) > 0, 'the test client’s own connections are counted as hidden');
      assert.equal(err.filter((l) => l.includes('unavailable')).length, 0, err.join('\n'));
      assertProgsGone(progIds(err.join('\n')));
    } finally {
      if (tracer.exitCode === null) tracer.kill('SIGKILL');
      await cluster?.stop();
    }
  });

  it('kvs server --trace without capabilities: one warning, then the same story through the in-process tap', { skip: tapSkip }, async () => {
    const cluster = await TestCluster.start({
      basePort: 26200,
      args: ['--trace', '--trace-format', 'json'],
      captureStdout: true,
      wrap: ['setpriv', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--'],
    });
    try {
      const result = await runScenario(cluster, msgsOf(cluster), summariesOf(cluster));
      await stopGracefully(cluster);
      const { msgs, summaries } = parseJsonLines(allStdout(cluster));
      checkScenarioLines(msgs, result, cluster.ids, { allowPartial: false });
      for (const id of cluster.ids) {
        // The replica's log: one JSON object per line (stderr is a pipe), see docs/operations.md.
        const log = (cluster.logs.get(id) ?? []).join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { msg: string; level: string });
        const starts = log.filter((l) => l.msg === 'listening').length;
        const traceLines = log.filter((l) => l.msg.startsWith('trace:')).map((l) => l.msg);
        assert.ok(log.filter((l) => l.msg.startsWith('trace: eBPF capture unavailable')).every((l) => l.level === 'warn'));
        assert.ok(starts > 0);
        assert.deepEqual(
          traceLines,
          Array.from({ length: starts }, () => 'trace: eBPF capture unavailable (missing CAP_BPF and CAP_NET_ADMIN (CapEff 0)); using the in-process tap'),
          `replica ${id}: one warning per start`,
        );
      }
      const finals = summaries.filter((s) => s.final);
      assert.ok(finals.length >= cluster.ids.length, 'every gracefully stopped replica prints a final summary');
      for (const s of finals) {
        assert.equal(s.source, 'tap');
        assert.equal(s.undecodable, 0);
        assert.equal(s.drops, 0);
        assert.match(s.label, /^g0 r[123]$/);
        assert.equal(`g${s.group} r${s.replica}`, s.label, 'a replica\'s summary names its group and replica');
      }
    } finally {
      await cluster.stop();
    }
  });

  it('kvs server --trace with eBPF in each replica: what each sends, the same story', { skip: liveSkip }, async () => {
    const cluster = await TestCluster.start({ basePort: 26300, args: ['--trace', '--trace-format', 'json'], captureStdout: true });
    try {
      const result = await runScenario(cluster, msgsOf(cluster), summariesOf(cluster));
      await stopGracefully(cluster);
      const { msgs, summaries } = parseJsonLines(allStdout(cluster));
      checkScenarioLines(msgs, result, cluster.ids, { allowPartial: true });
      const stderr = [...cluster.logs.values()].map((l) => l.join('')).join('\n');
      assert.doesNotMatch(stderr, /unavailable/);
      assert.match(stderr, /trace: eBPF on lo \(tcx\), ports 26301-26303/);
      for (const s of summaries.filter((x) => x.final)) assert.equal(s.source, 'ebpf');
      assertProgsGone(progIds(stderr));
    } finally {
      await cluster.stop();
    }
  });
});
