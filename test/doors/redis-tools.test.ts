// redis-cli and redis-benchmark (Debian's redis-tools, unmodified) against the RESP door of a real
// 3-replica group: one-shot commands on every replica, --pipe mass insertion, the REPL fed from a
// pipe and from a pseudo-terminal, and a benchmark whose results are checked afterwards.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { DoorCluster } from './cluster.ts';
import { reapOnExit } from '../support/processes.ts';

const HAVE_REDIS_TOOLS = spawnSync('redis-cli', ['--version']).status === 0 && spawnSync('redis-benchmark', ['--version']).status === 0;
const HAVE_SCRIPT = spawnSync('script', ['--version']).status === 0;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a tool to completion; `guardMs` only stops a hung tool from hanging the suite. */
function run(cmd: string, args: string[], input?: string | Buffer, guardMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = reapOnExit(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const guard = setTimeout(() => child.kill('SIGKILL'), guardMs);
    child.on('error', reject);
    child.stdin.on('error', () => {}); // a tool that exits before reading all its input: judged by its output
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

describe('redis-tools against a 3-replica group', { skip: HAVE_REDIS_TOOLS ? false : 'redis-tools is not installed (apt-get install redis-tools)', timeout: 300_000 }, () => {
  let cluster: DoorCluster;
  const cli = (id: number, ...args: string[]): Promise<Run> => run('redis-cli', ['-p', String(cluster.port(id, 'resp')), ...args]);
  const out = async (id: number, ...args: string[]): Promise<string> => {
    const r = await cli(id, ...args);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };

  before(async () => {
    cluster = await DoorCluster.start(21000);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('answers one-shot commands on every replica, leader or not', async () => {
    assert.equal(await out(1, 'PING'), 'PONG');
    assert.equal(await out(1, 'SET', 'greeting', 'hello world'), 'OK');
    for (const id of cluster.ids) assert.equal(await out(id, 'GET', 'greeting'), 'hello world');
    assert.equal(await out(2, 'ECHO', 'é and spaces'), 'é and spaces');
    assert.equal(await out(3, 'SET', 'n', '41'), 'OK');
    assert.equal(await out(1, 'INCR', 'n'), '42');
    assert.equal(await out(2, 'DECRBY', 'n', '2'), '40');
    assert.equal(await out(3, 'INCR', 'greeting'), 'ERR value is not an integer or out of range');
    assert.equal(await out(1, 'MSET', 'a', '1', 'b', '2', 'c', '3'), 'OK');
    assert.equal(await out(2, 'MGET', 'a', 'b', 'nope', 'c'), '1\n2\n\n3');
    assert.equal(await out(3, 'EXISTS', 'a', 'nope', 'b'), '2');
    assert.equal(await out(1, 'SET', 'a', 'x', 'NX'), '');
    assert.equal(await out(1, 'SET', 'a', 'x', 'XX', 'GET'), '1');
    assert.equal(await out(2, 'SET', 'fresh', 'y', 'NX'), 'OK');
    assert.equal(await out(3, 'DEL', 'a', 'b', 'nope'), '2');
    assert.equal(await out(1, 'EXISTS', 'a', 'b'), '0');
    assert.equal(await out(1, 'SELECT', '0'), 'OK');
    assert.equal(await out(1, 'SELECT', '1'), 'ERR DB index is out of range');
    assert.match(await out(2, 'FLURB', 'x'), /^ERR unknown command 'FLURB', with args beginning with: 'x'/);
    assert.match(await out(2, 'CLIENT', 'SETNAME', 'tester'), /^OK$/);
    assert.match(await out(3, 'DBSIZE'), /^[1-9]\d*$/);
  });

  it('reports Raft roles through INFO replication', async () => {
    const roles = await Promise.all(cluster.ids.map(async (id) => /role:(\w+)/.exec(await out(id, 'INFO', 'replication'))?.[1]));
    assert.equal(roles.filter((r) => r === 'master').length, 1, `roles: ${roles.join(', ')}`);
    assert.equal(roles.filter((r) => r === 'slave').length, 2, `roles: ${roles.join(', ')}`);
    const info = await out(1, 'INFO');
    for (const section of ['# Server', '# Clients', '# Replication', '# Keyspace']) assert.ok(info.includes(section), section);
    assert.match(info, /db0:keys=\d+,expires=0,avg_ttl=0/);
  });

  it('mass-inserts with --pipe through a follower, replies counted and in order', async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.ids.find((id) => id !== leader.replicaId)!;
    const n = 2000;
    let input = '';
    for (let i = 0; i < n; i++) input += `*3\r\n$3\r\nSET\r\n$${`pipe:${i}`.length}\r\npipe:${i}\r\n$${`v${i}`.length}\r\nv${i}\r\n`;
    const r = await run('redis-cli', ['-p', String(cluster.port(follower, 'resp')), '--pipe'], input);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`errors: 0, replies: ${n}`));
    assert.equal(await out(leader.replicaId, 'GET', 'pipe:0'), 'v0');
    assert.equal(await out(follower, 'GET', `pipe:${n - 1}`), `v${n - 1}`);
    const keys = (await out(follower, '--scan', '--pattern', 'pipe:*')).split('\n');
    assert.equal(keys.length, n);
    assert.equal(new Set(keys).size, n);
  });

  it('runs the REPL with commands from a pipe', async () => {
    assert.equal(await out(2, '-3', 'GET', 'greeting'), 'hello world'); // RESP3: HELLO 3 first
    const piped = await run('redis-cli', ['-p', String(cluster.port(2, 'resp'))], 'SET repl 7\nINCRBY repl 5\nGET repl\nSCAN 0 MATCH repl COUNT 1000\n');
    assert.equal(piped.code, 0, piped.stderr);
    assert.deepEqual(piped.stdout.trim().split('\n'), ['OK', '12', '12', '0', 'repl']);
  });

  it('runs the interactive REPL on a terminal', { skip: HAVE_SCRIPT ? false : 'script(1) is not installed' }, async () => {
    const port = cluster.port(3, 'resp');
    // script(1) gives redis-cli a pseudo-terminal; stty sets a width so linenoise does not probe for one.
    const child = reapOnExit(spawn('script', ['-qfc', `stty cols 120 rows 40; redis-cli -p ${port}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    let screen = '';
    const waiters: { done: (s: string) => boolean; resolve: () => void; reject: (e: Error) => void }[] = [];
    const check = (): void => {
      for (const w of [...waiters]) {
        if (w.done(screen)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    };
    child.stdout.on('data', (b: Buffer) => {
      screen += b.toString();
      check();
    });
    child.on('exit', () => {
      for (const w of waiters.splice(0)) w.reject(new Error(`redis-cli exited early; terminal:\n${screen}`));
    });
    child.stdin.on('error', () => {}); // EPIPE once it exited early: the waiters above report that
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const prompt = `127.0.0.1:${port}> `;
    const waitFor = (done: (s: string) => boolean): Promise<void> =>
      done(screen) ? Promise.resolve() : new Promise((resolve, reject) => waiters.push({ done, resolve, reject }));
    // The reply, then the next prompt: linenoise prints it after switching the terminal back to
    // raw mode, and a line typed before that would be taken as cooked input.
    const type = async (line: string, reply: string): Promise<void> => {
      const from = screen.length;
      child.stdin.write(`${line}\r`); // Enter on a terminal is CR
      await waitFor((s) => {
        const at = s.indexOf(`\n${reply}`, from);
        return at >= 0 && s.indexOf(prompt, at) >= 0;
      });
    };
    try {
      await waitFor((s) => s.includes(prompt));
      await type('SET tty 10', 'OK');
      await type('INCR tty', '(integer) 11');
      await type('GET tty', '"11"');
      await type('DBSIZE', '(integer)');
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin.write('quit\r');
      await exited;
    } finally {
      clearTimeout(guard);
      child.kill('SIGKILL');
    }
  });

  it('runs --bigkeys and --memkeys to the end, every key sized', async () => {
    // --memkeys asks MEMORY USAGE of every key: unknown here before, it warned once per key.
    await out(1, 'SET', 'sized', 'x'.repeat(1000));
    for (const mode of ['--bigkeys', '--memkeys']) {
      const r = await cli(2, mode);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /Warning|ERR/, mode);
      assert.match(r.stdout, /Biggest string found '"sized"' has 10\d\d bytes/, mode);
    }
  });

  it('runs redis-benchmark -t set,get,mset,incr through a follower; the results check out', async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.ids.find((id) => id !== leader.replicaId)!;
    const n = 2000;
    await out(follower, 'DEL', 'counter:__rand_int__');
    const r = await run('redis-benchmark', ['-p', String(cluster.port(follower, 'resp')), '-t', 'set,get,mset,incr', '-n', String(n), '-c', '20', '--csv']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    // redis-benchmark stops at the first error reply, so a clean exit means none.
    assert.doesNotMatch(r.stdout + r.stderr, /ERR|TRYAGAIN|TIMEOUT/);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(',').map((c) => c.replace(/"/g, '')));
    const tests = rows.filter((row) => row[0] !== 'test').map((row) => row[0]);
    assert.deepEqual(tests.sort(), ['GET', 'INCR', 'MSET (10 keys)', 'SET']);
    for (const row of rows.filter((x) => x[0] !== 'test')) assert.ok(Number(row[1]) > 0, `${row[0]}: ${row[1]} requests per second`);
    // Without -r every request uses the same key: n INCRs without an error leave exactly n.
    assert.equal(await out(leader.replicaId, 'GET', 'counter:__rand_int__'), String(n));
    assert.equal((await out(follower, 'GET', 'key:__rand_int__')).length, 3); // -d 3: random payload bytes
  });
});
