// What stays on the interface when a tracing process dies. Runs in a network
// namespace of its own, so no other tracer (another test run, a colleague's)
// touches the lo being inspected.
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { AttachInfo } from '../../src/trace/native.ts';
import { liveSkipReason } from './helpers/live.ts';
import { reapOnExit } from '../support/processes.ts';

const skip = liveSkipReason();
const ns = `kvs-trace-${process.pid}`;
const fixture = fileURLToPath(new URL('./fixtures/trace-child.ts', import.meta.url));
const PORT = 23997;

function inNs(cmd: string, ...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' });
}

/** Program ids of classic tc filters on the namespace's lo, per bpftool. */
function tcProgIds(): number[] {
  const out = JSON.parse(inNs('bpftool', '-j', 'net', 'show', 'dev', 'lo')) as { tc?: { id: number }[] }[];
  return out.flatMap((e) => e.tc ?? []).map((f) => f.id);
}

/** Program ids behind live BPF links: tcx attachments (bpftool 7.1's `net show` does not list tcx). */
function linkProgIds(): number[] {
  return (JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { prog_id: number }[]).map(
    (l) => l.prog_id,
  );
}

function filters(): string {
  return inNs('tc', 'filter', 'show', 'dev', 'lo', 'ingress') + inNs('tc', 'filter', 'show', 'dev', 'lo', 'egress');
}

async function child(mode: string, then: string): Promise<{ proc: ChildProcess; info: AttachInfo }> {
  const proc = reapOnExit(spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', fixture, 'attach', mode, String(PORT), then], {
    stdio: ['ignore', 'pipe', 'inherit'],
  }));
  const lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  const [line] = (await once(lines, 'line')) as [string];
  const info = JSON.parse(line) as AttachInfo & { error?: string };
  if (info.error) throw new Error(info.error);
  return { proc, info };
}

async function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) await once(proc, 'exit');
}

const ids = (i: AttachInfo) => [i.ingressProgId, i.egressProgId];

describe('attachment lifecycle (own network namespace)', { skip }, () => {
  before(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  });
  after(() => {
    execFileSync('ip', ['netns', 'del', ns]);
  });

  it('tcx links go away when the attached process is killed with SIGKILL', async () => {
    const { proc, info } = await child('tcx', 'wait');
    assert.equal(info.mode, 'tcx');
    assert.deepEqual(ids(info).filter((id) => linkProgIds().includes(id)), ids(info));
    proc.kill('SIGKILL');
    await exited(proc);
    assert.deepEqual(ids(info).filter((id) => linkProgIds().includes(id)), []);
    assert.deepEqual(tcProgIds(), []);
    assert.equal(filters(), '');
  });

  it('a classic filter outlives SIGKILL, and the next start removes it', async () => {
    const { proc, info } = await child('classic', 'wait');
    assert.equal(info.mode, 'classic');
    assert.deepEqual(tcProgIds().sort(), ids(info).sort());
    proc.kill('SIGKILL');
    await exited(proc);
    assert.deepEqual(tcProgIds().sort(), ids(info).sort(), 'still attached after the crash');
    assert.match(filters(), new RegExp(`kvs_tr_ingress:\\[${info.ingressProgId}\\]`));

    const next = await child('auto', 'close');
    await exited(next.proc);
    assert.equal(next.info.staleRemoved, 2);
    assert.deepEqual(tcProgIds(), []);
    assert.equal(filters(), '');
  });

  it("leaves a live tracer's classic filter alone", async () => {
    const live = await child('classic', 'wait');
    const other = await child('classic', 'close');
    await exited(other.proc);
    assert.equal(other.info.staleRemoved, 0);
    assert.deepEqual(tcProgIds().sort(), ids(live.info).sort());
    live.proc.kill('SIGKILL');
    await exited(live.proc);
    const cleanup = await child('auto', 'close');
    await exited(cleanup.proc);
    assert.equal(cleanup.info.staleRemoved, 2);
  });

  for (const then of ['exit', 'natural']) {
    it(`removes classic filters when the process ends without detaching (${then})`, async () => {
      const { proc, info } = await child('classic', then);
      assert.equal(info.mode, 'classic');
      await exited(proc);
      assert.equal(proc.exitCode, 0);
      assert.deepEqual(tcProgIds(), []);
      assert.equal(filters(), '');
    });
  }
});
