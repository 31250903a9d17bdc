// The reader of kvs's output goes away (kvs scan | head -1, kvs up | tee and tee ends). The EPIPE
// that followed was unheard: a one-shot command died with a stack trace and exit 1 (which says "key
// not found"), and kvs up died with its replicas orphaned mid-run. Now a one-shot command ends
// quietly and one that runs on carries on without its output.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { readCluster } from '../../src/cli/cluster-file.ts';
import { KvsClient } from '../../src/client/client.ts';
import { reapOnExit } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');

/** Runs kvs with its stdout's reader gone before it writes; resolves with its exit code and stderr. */
function withReaderGone(args: string[], cwd: string): { exited: Promise<number | null>; stderr: () => string; child: ReturnType<typeof spawn> } {
  const child = reapOnExit(spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
  child.stdout!.destroy(); // the reader is gone: every write of the child's gets EPIPE
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { exited, stderr: () => stderr, child };
}

describe('kvs whose output reader has gone away', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-output-closed-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('kvs up runs on; kvs scan of 3,000 keys ends quietly (exit 0); kvs up stops gracefully on SIGINT', async () => {
    // Ports 24101-24402.
    const data = join(dir, 'data');
    const up = withReaderGone(['up', '--data', data, '--shards', '1', '--replicas', '1', '--base-port', '24101', '--log-format', 'json'], dir);
    try {
      await waitFor('cluster.json (ready)', () => existsSync(join(data, 'cluster.json')) || up.child.exitCode !== null, 120_000, 100);
      assert.equal(up.child.exitCode, null, `kvs up ended: ${up.stderr().slice(-2000)}`);
      const kv = new KvsClient({ endpoints: readCluster(data).map((r) => r.endpoints.native), timeoutMs: 30_000 });
      try {
        for (let i = 0; i < 3000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => kv.put(`key${i + j}`, 'v'.repeat(100))));
      } finally {
        kv.close();
      }
      // Its answer is ~330 KB: written on after the reader left, each write gets EPIPE.
      const scan = withReaderGone(['scan', '--limit', '5000', '--data', data], dir);
      assert.equal(await scan.exited, 0, scan.stderr().slice(-2000));
      assert.doesNotMatch(scan.stderr(), /EPIPE|Unhandled/);
      up.child.kill('SIGINT');
      assert.equal(await up.exited, 0, up.stderr().slice(-2000));
      assert.doesNotMatch(up.stderr(), /EPIPE|Unhandled/);
    } finally {
      up.child.kill('SIGKILL');
    }
  });
});
