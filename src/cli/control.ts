// The local control channel of `kvs up`: a Unix socket in the data directory through which
// `kvs reshard` and `kvs replica` ask the running supervisor to start or stop a shard group's
// replicas (so they stay its children: restarted on crash, stopped on Ctrl-C). One JSON line each way.
import net from 'node:net';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { readlinkSync, realpathSync, rmSync, symlinkSync } from 'node:fs';

export type ControlRequest =
  | { cmd: 'add-group'; group: number }
  | { cmd: 'stop-group'; group: number }
  /**
   * Start one more replica of a group, with --join; answers its id and native address. `host`:
   * the host process to run it in (default: the one with the fewest replicas of the group).
   */
  | { cmd: 'add-replica'; group: number; host?: number }
  | { cmd: 'stop-replica'; id: number; group: number }
  /** Which host process runs each shard replica (hosts 0 with a process per replica). */
  | { cmd: 'layout' };
export interface AddedReplica {
  id: number;
  address: string;
}
export interface HostLayout {
  /** Host processes; 0: a process per replica (nothing to spread). */
  hosts: number;
  replicas: { id: number; group: number; host: number; address: string }[];
}
export type ControlAnswer = { replica: AddedReplica } | { layout: HostLayout };
export type ControlResponse = ({ ok: true } & Partial<{ replica: AddedReplica; layout: HostLayout }>) | { ok: false; error: string };

/**
 * The longest Unix socket path, in bytes (sun_path holds 108 with the NUL on Linux, 104 on macOS).
 * A longer one is cut short by the kernel without a word: the socket then appeared beside the data
 * directory under a cut name, stayed after kvs up stopped, and the next kvs up failed to listen.
 */
const MAX_SOCKET_PATH = 103;

/**
 * DIR/control.sock, or where that is too long for a socket, one in the temporary directory named
 * by a hash of DIR's absolute path: kvs up and the commands that call it find the same one.
 */
export function controlPath(dataDir: string): string {
  const dir = resolve(dataDir);
  const path = join(dir, 'control.sock');
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH) return path;
  // Hashed by where DIR really is: kvs up and a command that name it through different symlinks
  // agree, and a copy or a move of DIR (with the link in it, callPath) names another socket.
  let real = dir;
  try {
    real = realpathSync(dir);
  } catch {
    // not there (yet): as named
  }
  // An absolute TMPDIR: a relative one named another place from another cwd, and from the link.
  return join(resolve(tmpdir()), `kvs-up-${createHash('sha256').update(real).digest('hex').slice(0, 16)}.sock`);
}

/**
 * The socket a command calls: where kvs up's is in the temporary directory, the link kvs up leaves
 * at DIR/control.sock names it, as the command's TMPDIR may not be kvs up's (another shell, sudo).
 */
function callPath(dataDir: string): string {
  const path = controlPath(dataDir);
  const named = join(resolve(dataDir), 'control.sock');
  if (path === named) return path;
  let target: string;
  try {
    target = resolve(dirname(named), readlinkSync(named));
  } catch {
    return path; // no link (a filesystem without them): found with the same TMPDIR
  }
  // Only a link to this directory's socket: one copied or moved with the directory (cp -a, mv)
  // names the socket of the kvs up of the directory it came from, a cluster this command must not change.
  return basename(target) === basename(path) ? target : path;
}

/** Listens on the control socket of `dataDir`; rejects with a clear error if it cannot. */
export function serveControl(dataDir: string, handle: (r: ControlRequest) => Promise<ControlAnswer | void>): Promise<net.Server> {
  const path = controlPath(dataDir);
  const server = net.createServer((s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      if (buf.length > 4096) s.destroy();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req: ControlRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
      } catch {
        s.end(`${JSON.stringify({ ok: false, error: 'bad request' })}\n`);
        return;
      }
      handle(req).then(
        (answer) => s.end(`${JSON.stringify({ ok: true, ...answer })}\n`),
        (e: unknown) => s.end(`${JSON.stringify({ ok: false, error: (e as Error).message })}\n`),
      );
    });
    s.on('error', () => {});
  });
  return new Promise((done, fail) => {
    const failed = (e: Error): void => fail(new Error(`cannot listen on the control socket ${path} for kvs reshard and kvs replica (${e.message})`));
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH) return failed(new Error('path too long for a Unix socket; set TMPDIR to a shorter directory'));
    try {
      rmSync(path, { force: true }); // a socket file left by a killed supervisor
    } catch (e) {
      return failed(e as Error);
    }
    server.once('error', failed);
    server.listen(path, () => {
      server.off('error', failed);
      server.on('error', (e) => console.error(`kvs up: control socket ${path}: ${e.message}`));
      const named = join(resolve(dataDir), 'control.sock');
      if (path !== named) linkSocket(server, path, named);
      done(server);
    });
  });
}

/** DIR/control.sock → the socket in the temporary directory (callPath), removed with the socket. */
function linkSocket(server: net.Server, path: string, named: string): void {
  try {
    rmSync(named, { force: true }); // a link left by a killed supervisor
    symlinkSync(path, named);
  } catch (e) {
    console.error(`kvs up: cannot link ${named} to the control socket ${path} (${(e as Error).message}): commands must run with this TMPDIR`);
    return;
  }
  server.once('close', () => {
    try {
      if (readlinkSync(named) === path) rmSync(named, { force: true });
    } catch {
      // gone already
    }
  });
}

export async function callControl(dataDir: string, req: ControlRequest, timeoutMs = 60_000): Promise<AddedReplica | undefined> {
  return (await askControl(dataDir, req, timeoutMs)).replica;
}

/** kvs up's host layout (see HostLayout). */
export async function hostLayout(dataDir: string): Promise<HostLayout> {
  const { layout } = await askControl(dataDir, { cmd: 'layout' });
  if (!layout) throw new Error('kvs up did not answer with its layout (an older kvs up?)');
  return layout;
}

function askControl(dataDir: string, req: ControlRequest, timeoutMs = 60_000): Promise<Partial<{ replica: AddedReplica; layout: HostLayout }>> {
  return new Promise((resolve, reject) => {
    const s = net.connect(callPath(dataDir));
    let buf = '';
    const timer = setTimeout(() => s.destroy(new Error('kvs up did not answer')), timeoutMs);
    s.on('connect', () => s.write(`${JSON.stringify(req)}\n`));
    s.on('data', (d: Buffer) => (buf += d.toString('utf8')));
    s.on('end', () => {
      clearTimeout(timer);
      try {
        const res = JSON.parse(buf) as ControlResponse;
        if (res.ok) resolve(res);
        else reject(new Error(res.error));
      } catch {
        reject(new Error('bad answer from kvs up'));
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach the running "kvs up" (${e.message}): is the cluster started with kvs up?`));
    });
  });
}
