// A write refused by a full file system is reported as such. Before, an outside test's replica on a
// full disk logged "a short write to the log in DIR" (the log's write came back short, no errno)
// or "the LMDB commit failed: Input/output error" (LMDB reports a short write as EIO): an operator
// went after the device, not the disk space. And a replica started on a full disk died of SIGBUS
// (lmdb-js writing its new lock file through a map) with nothing said. Needs root (a mount
// namespace with a 1 MiB tmpfs).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from './helpers.ts';

const CHILD = join(import.meta.dirname, 'disk-full-child.ts');
const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** The error the store on a full 1 MiB tmpfs fails with (`lmdb`: its log on the ordinary disk). */
function fill(which: 'wal' | 'lmdb' | 'open' | 'open-shared'): string {
  const mnt = tempDir('disk-full-mnt');
  const wal = tempDir('disk-full-wal');
  dirs.push(mnt, wal);
  const script = `mount -t tmpfs -o size=1m tmpfs "${mnt}" && mkdir "${mnt}/r" && exec "${process.execPath}" --import tsx "${CHILD}" "${mnt}/r" ${which} "${wal}"`;
  const r = spawnSync('unshare', ['-m', 'sh', '-c', script], { encoding: 'utf8', cwd: join(import.meta.dirname, '../..') });
  assert.equal(r.status, 0, `the child failed (${r.signal ?? r.status}): ${r.stderr}`);
  return (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { error: string }).error;
}

describe('a full disk', () => {
  it('the log: the write is refused naming ENOSPC and the full file system', () => {
    const error = fill('wal');
    assert.match(error, /^writing the log in .*\/r\/wal failed: ENOSPC/);
    assert.match(error, /the file system holding .*\/r\/wal is full: \d+ bytes free; free space there, then restart the replica/);
  });

  it('the LMDB checkpoint: its EIO is reported with the full file system', () => {
    const error = fill('lmdb');
    assert.match(error, /the LMDB commit failed: Input\/output error \(the file system holding .*\/r is full: \d+ bytes free; free space there, then restart the replica\)/);
  });

  for (const which of ['open', 'open-shared'] as const) {
    it(`a new store opened on it (${which === 'open' ? 'its own environment' : 'a shared one'}): refused, saying so, the process alive`, () => {
      const error = fill(which);
      assert.match(error, /^cannot open the store in .*: LMDB needs free space to open it \(the file system holding .* is full: \d+ bytes free; free space there, then restart the replica\)$/);
    });
  }
});
