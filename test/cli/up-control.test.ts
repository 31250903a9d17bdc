// kvs up's control socket (src/cli/control.ts), through which kvs reshard and kvs replica reach it.
// A data directory whose DIR/control.sock is longer than a Unix socket path can be (108 bytes with
// the NUL on Linux) had its socket cut short by the kernel: it appeared beside the data directory
// under a cut name, stayed there after kvs up stopped, and the next kvs up on that directory died
// of an uncaught EADDRINUSE. Such a directory now gets a socket in the temporary directory, named
// by a hash of its path; and a socket kvs up cannot listen on stops it with a clear message.
// Ports 21501-21812 (bases 21501 and 21511).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { controlPath, hostLayout, serveControl } from '../../src/cli/control.ts';
import { KvsUp } from '../support/kvs-up.ts';
import { reapOnExit } from '../support/processes.ts';

const BIN = join(import.meta.dirname, '../../bin/kvs.js');
const LONG = 'd'.repeat(130); // with the temporary directory: a data dir path of about 150 bytes
const SMALL = ['--shards', '1', '--replicas', '1', '--processes', '1'];

describe('the control socket path', () => {
  it('is DIR/control.sock where that fits, else one in the temporary directory that both sides find', () => {
    assert.equal(controlPath('/var/kvs/data'), '/var/kvs/data/control.sock');
    const long = join(tmpdir(), 'kvs-x', LONG);
    const path = controlPath(long);
    assert.equal(dirname(path), tmpdir());
    assert.ok(Buffer.byteLength(path) < 104, path);
    assert.equal(controlPath(relative(process.cwd(), long)), path, 'the same directory named relatively');
    assert.equal(controlPath(`${long}/`), path);
    assert.notEqual(controlPath(`${long}e`), path, 'another directory with the same first 108 bytes');
  });

  it('where it is in the temporary directory, a command run with another TMPDIR than kvs up finds it', async () => {
    // Found in review of 53b8673: the socket's place depended on TMPDIR on both sides, so kvs reshard
    // or kvs replica from a shell with another TMPDIR (a tmux session, sudo, a systemd unit) could not
    // reach kvs up. kvs up leaves DIR/control.sock as a link to it.
    const base = mkdtempSync(join(tmpdir(), 'kvs-control-tmpdir-'));
    const data = join(base, LONG);
    mkdirSync(data, { recursive: true });
    mkdirSync(join(base, 'up-tmp'));
    const tmp0 = process.env.TMPDIR;
    try {
      process.env.TMPDIR = join(base, 'up-tmp'); // kvs up's
      const server = await serveControl(data, async () => ({ layout: { hosts: 1, replicas: [] } }));
      try {
        process.env.TMPDIR = join(base, 'other-tmp'); // the command's
        assert.deepEqual(await hostLayout(data), { hosts: 1, replicas: [] });
      } finally {
        await new Promise((r) => server.close(r));
      }
      assert.deepEqual(readdirSync(data), [], 'the link is removed with the socket');
    } finally {
      if (tmp0 === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmp0;
      rmSync(base, { recursive: true, force: true });
    }
  });

  /** Runs `body` in a fresh directory (under the temporary one), restoring TMPDIR and the cwd after. */
  async function inBase(body: (base: string) => Promise<void>): Promise<void> {
    const base = mkdtempSync(join(tmpdir(), 'kvs-control-link-'));
    const [tmp0, cwd0] = [process.env.TMPDIR, process.cwd()];
    try {
      await body(base);
    } finally {
      process.chdir(cwd0);
      if (tmp0 === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmp0;
      rmSync(base, { recursive: true, force: true });
    }
  }
  const layout = async (): Promise<{ layout: { hosts: number; replicas: [] } }> => ({ layout: { hosts: 1, replicas: [] } });

  it('a command on a copy or a move of a data dir (the link with it) does not reach the kvs up of the original', async () => {
    // Found in review of 99f59fe: the link copied (cp -a, rsync -a) or moved with the directory still
    // named the original's socket, and kvs reshard or kvs replica on the copy changed the original's
    // cluster. A link is followed only to this directory's socket.
    await inBase(async (base) => {
      process.env.TMPDIR = base;
      const data = join(base, LONG);
      mkdirSync(data);
      const server = await serveControl(data, layout);
      try {
        cpSync(data, join(base, `${LONG}c`), { recursive: true, verbatimSymlinks: true });
        await assert.rejects(hostLayout(join(base, `${LONG}c`)), /cannot reach the running "kvs up"/);
        renameSync(join(base, `${LONG}c`), join(base, `${LONG}m`));
        await assert.rejects(hostLayout(join(base, `${LONG}m`)), /cannot reach the running "kvs up"/);
        assert.deepEqual(await hostLayout(data), { hosts: 1, replicas: [] });
      } finally {
        await new Promise((r) => server.close(r));
      }
    });
  });

  it('a command naming the data dir through another symlink than kvs up (and another TMPDIR) finds it', async () => {
    await inBase(async (base) => {
      const data = join(base, LONG);
      mkdirSync(data);
      symlinkSync(data, join(base, `${LONG}l`));
      mkdirSync(join(base, 'up-tmp'));
      process.env.TMPDIR = join(base, 'up-tmp');
      const server = await serveControl(join(base, `${LONG}l`), layout);
      try {
        process.env.TMPDIR = join(base, 'other-tmp');
        assert.deepEqual(await hostLayout(data), { hosts: 1, replicas: [] });
      } finally {
        await new Promise((r) => server.close(r));
      }
    });
  });

  it('kvs up with a relative TMPDIR: a command from another directory finds its socket', async () => {
    // Found in review of 99f59fe: the socket was named relative to kvs up's cwd, and so was the
    // link's target, which a link resolves from the directory it is in: a dangling link.
    await inBase(async (base) => {
      const data = join(base, LONG);
      mkdirSync(data);
      mkdirSync(join(base, 'up-tmp'));
      mkdirSync(join(base, 'elsewhere'));
      process.chdir(base);
      process.env.TMPDIR = 'up-tmp';
      const server = await serveControl(data, layout);
      try {
        process.chdir(join(base, 'elsewhere'));
        process.env.TMPDIR = join(base, 'other-tmp');
        assert.deepEqual(await hostLayout(data), { hosts: 1, replicas: [] });
      } finally {
        await new Promise((r) => server.close(r));
      }
    });
  });

  it('a socket that cannot be listened on is a clear error, not an uncaught exception', async () => {
    const missing = join(tmpdir(), 'kvs-no-such-dir', 'data'); // listen fails (Node says EACCES)
    await assert.rejects(serveControl(missing, async () => undefined), /cannot listen on the control socket .*kvs-no-such-dir.* \(listen E[A-Z]+/);
  });
});

describe('kvs up with a data directory path of about 150 bytes', () => {
  const up = new KvsUp(LONG);
  after(() => up.stop());

  it('answers on its control socket, leaves no socket behind when it stops, and starts again', async () => {
    assert.ok(Buffer.byteLength(up.data) > 140, up.data);
    for (const run of [1, 2]) {
      up.output = '';
      await up.start([...SMALL, '--base-port', '21501']).ready(120_000);
      const layout = await hostLayout(up.data);
      assert.deepEqual(layout.replicas.map((r) => r.id), [101], `run ${run}`);
      await up.halt();
      assert.doesNotMatch(up.output, /EADDRINUSE|Unhandled/);
      assert.deepEqual(readdirSync(up.dir), [LONG], 'nothing beside the data directory');
      assert.equal(existsSync(controlPath(up.data)), false, 'the socket is removed at stop');
    }
  });
});

describe('kvs up that cannot listen on its control socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-up-control-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('stops the cluster and exits 3 with a clear message', async () => {
    // Its socket goes to the temporary directory (a long path), which does not exist for it.
    const data = join(dir, LONG);
    const env = { ...process.env, TMPDIR: join(dir, 'no-such-tmp') };
    const proc = reapOnExit(spawn(process.execPath, [BIN, 'up', '--data', data, '--log-format', 'json', ...SMALL, '--base-port', '21511'], { stdio: ['ignore', 'pipe', 'pipe'], env }));
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    proc.stdout.resume();
    const timer = setTimeout(() => proc.kill('SIGKILL'), 120_000);
    const code = await new Promise<number | null>((res) => proc.on('exit', (c) => res(c)));
    clearTimeout(timer);
    assert.match(stderr, /kvs up: cannot listen on the control socket .*no-such-tmp.* \(listen E[A-Z]+.*\); stopping the cluster/);
    assert.doesNotMatch(stderr, /Unhandled|node:events/);
    assert.equal(code, 3, stderr);
    assert.deepEqual(readdirSync(dir).sort(), [LONG], 'no socket beside the data directory');
  });
});
