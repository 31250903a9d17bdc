// The floor chain of bench/floor/replica.c in Node (make bench-floor): the same protocol, roles and
// pre-zeroed data file, to show what Node's event loop, net and fs add to the least a durable
// 3-replica write can cost — a lower bound for this store's write path, not a competitor.
// One writeSync + fdatasync per batch, one batch in flight; what arrives meanwhile is the next batch:
//   async  fs.fdatasync on the libuv thread pool, the event loop free meanwhile;
//   sync   fs.fdatasyncSync on the event loop (no thread hop; the loop waits for the disk).
//
//   node --import tsx bench/floor/replica.ts leader   async|sync DATAFILE CLIENT_PORT FOLLOWER_PORT FOLLOWER_PORT
//   node --import tsx bench/floor/replica.ts follower async|sync DATAFILE PORT
import { fdatasync, fdatasyncSync, fstatSync, openSync, writeSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';

const REQ = 108; // request payload: u64 id + 100-byte value

const [role, mode, dataFile, ...ports] = process.argv.slice(2);
if (!((role === 'leader' && ports.length === 3) || (role === 'follower' && ports.length === 1)) || (mode !== 'async' && mode !== 'sync') || !dataFile) {
  console.error('usage: replica.ts leader async|sync DATAFILE CLIENT_PORT FOLLOWER_PORT FOLLOWER_PORT\n       replica.ts follower async|sync DATAFILE PORT');
  process.exit(2);
}

const fd = openSync(dataFile, 'r+');
const dataSize = fstatSync(fd).size;
let offset = 0;

/** Batches waiting for the flush in progress, and the index of their last request. */
let queued: Buffer[] = [];
let queuedLast = 0;
let flushing = false;
let onFlushed: (last: number) => void = () => undefined;

function enqueue(buf: Buffer, last: number): void {
  queued.push(buf);
  queuedLast = last;
  if (!flushing) flush();
}

function flush(): void {
  const buf = queued.length === 1 ? queued[0]! : Buffer.concat(queued);
  const last = queuedLast;
  queued = [];
  if (offset + buf.length > dataSize) offset = 0;
  writeSync(fd, buf, 0, buf.length, offset);
  offset += buf.length;
  if (mode === 'sync') {
    fdatasyncSync(fd);
    onFlushed(last);
    return;
  }
  flushing = true;
  fdatasync(fd, (err) => {
    if (err) throw err;
    flushing = false;
    onFlushed(last);
    if (queued.length) flush();
  });
}

/** Splits a stream into [u32 length][payload] frames; calls `onFrames` with each chunk's complete ones. */
function frames(onFrames: (payloads: Buffer[]) => void): (chunk: Buffer) => void {
  let pending: Buffer | undefined;
  return (chunk) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    const out: Buffer[] = [];
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32LE(off);
      if (buf.length - off < 4 + len) break;
      out.push(buf.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    pending = off === buf.length ? undefined : buf.subarray(off);
    if (out.length) onFrames(out);
  };
}

function indexFrame(index: number): Buffer {
  const f = Buffer.allocUnsafe(12);
  f.writeUInt32LE(8, 0);
  f.writeBigUInt64LE(BigInt(index), 4);
  return f;
}

/** Serves the first connection on the port, then stops listening; exits when it closes. */
function serveOne(port: number, onConnection: (sock: Socket) => void): void {
  const server = createServer((sock) => {
    server.close();
    sock.setNoDelay(true);
    sock.on('close', () => process.exit(0));
    sock.on('error', () => process.exit(0));
    onConnection(sock);
  });
  server.listen(port, '127.0.0.1');
}

if (role === 'follower') {
  serveOne(Number(ports[0]), (leader) => {
    onFlushed = (last) => leader.write(indexFrame(last));
    leader.on(
      'data',
      frames((batches) => {
        const last = Number(batches[batches.length - 1]!.readBigUInt64LE(0));
        const requests = batches.map((b) => b.subarray(8));
        enqueue(requests.length === 1 ? requests[0]! : Buffer.concat(requests), last);
      }),
    );
  });
} else {
  const [clientPort, ...followerPorts] = ports.map(Number);
  let ownFlushed = 0;
  let answered = 0;
  let lastIndex = 0;
  const followerFlushed = [0, 0];
  /** Ids (8 bytes) of the requests answered + 1 .. lastIndex. */
  let ids: Buffer[] = [];
  let client: Socket | undefined;

  /** Answers every request that the leader and one follower have flushed. */
  const answerCommitted = (): void => {
    const committed = Math.min(ownFlushed, Math.max(followerFlushed[0]!, followerFlushed[1]!));
    if (committed <= answered) return;
    const n = committed - answered;
    const out = Buffer.allocUnsafe(n * 12);
    for (let i = 0; i < n; i++) {
      out.writeUInt32LE(8, i * 12);
      ids[i]!.copy(out, i * 12 + 4);
    }
    ids = ids.slice(n);
    answered = committed;
    client?.write(out);
  };
  onFlushed = (last) => {
    ownFlushed = last;
    answerCommitted();
  };

  let connected = 0;
  const followers = followerPorts.map((port, k) => {
    const sock = connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    // The follower may not listen yet: retry until it does.
    sock.on('error', () => setTimeout(() => sock.connect(port, '127.0.0.1'), 50));
    sock.on('connect', () => {
      if (++connected === 2) serveOne(clientPort!, acceptClient);
    });
    sock.on(
      'data',
      frames((acks) => {
        followerFlushed[k] = Number(acks[acks.length - 1]!.readBigUInt64LE(0));
        answerCommitted();
      }),
    );
    return sock;
  });

  const acceptClient = (sock: Socket): void => {
    client = sock;
    sock.on(
      'data',
      frames((requests) => {
        const n = requests.length;
        const batch = Buffer.allocUnsafe(12 + n * REQ);
        for (let i = 0; i < n; i++) {
          requests[i]!.copy(batch, 12 + i * REQ, 0, REQ);
          ids.push(batch.subarray(12 + i * REQ, 20 + i * REQ));
        }
        lastIndex += n;
        batch.writeUInt32LE(8 + n * REQ, 0);
        batch.writeBigUInt64LE(BigInt(lastIndex), 4);
        // To the followers before the leader's own flush, so that the three flushes overlap.
        for (const f of followers) f.write(batch);
        enqueue(batch.subarray(12), lastIndex);
      }),
    );
  };
}
