// The RESP door: a TCP listener speaking the Redis protocol, so redis-cli, redis-benchmark and
// Redis client libraries work against a replica. Each connection is a RespSession; this file only
// moves bytes, coalesces replies into one write per event-loop turn, and stops reading a socket
// whose client does not read its replies (or has too many commands in flight).
import net from 'node:net';
import { listenAddress } from '../address/listen.ts';
import { MAX_UNSENT_BYTES } from '../transport/frame-socket.ts';
import type { Door, DoorContext } from './door-context.ts';
import { KeyUpdater } from './key-updater.ts';
import { KvOps } from './kv-ops.ts';
import { DEFAULT_RESP_LIMITS, type RespDecoderLimits } from './resp-codec.ts';
import type { RespCommand, RespConnection, RespServer } from './resp-command.ts';
import { KV_COMMANDS } from './resp-kv-commands.ts';
import { SERVER_COMMANDS } from './resp-server-commands.ts';
import { RespSession } from './resp-session.ts';
import { RespWriteBatcher } from './resp-write-batcher.ts';
import { ScanCursors } from './scan-cursors.ts';

export interface RespDoorOptions {
  /** host:port; port 0 picks a free one. */
  listen: string;
  /** Stop reading a socket while this many reply bytes wait to be sent. */
  maxPendingWriteBytes?: number;
  /** Drop a connection once this many reply bytes wait unsent (replies already running still come). */
  maxUnsentBytes?: number;
  maxPipeline?: number;
  maxConnections?: number;
  /** Idle connections are closed after this long (0: never; Redis's default is never). */
  idleTimeoutMs?: number;
  /**
   * A command must be complete within this many ms of when the door began waiting for its rest
   * (default 30 s, as the native door's frames): a client that sends part of one and stalls, or
   * trickles it a byte at a time, holds up to a command's size (~4 MiB) of this process.
   */
  partialCommandTimeoutMs?: number;
  /**
   * After QUIT or a protocol error the door half-closes (the reply goes out first) and closes this
   * many ms after its replies have left (default 1 s) unless the client closed first. Redis closes at once; left
   * half-open, such a connection was read and discarded for as long as the client kept sending
   * (found by an outside tester).
   */
  closeGraceMs?: number;
  /**
   * How long a batch of blind writes may wait, after an answer, for the clients it answered to
   * send their next writes (RespWriteBatcher's lingerMs: default 2 ms, 0 never waits).
   */
  writeLingerMs?: number;
}

export const RESP_COMMANDS: ReadonlyMap<string, RespCommand> = new Map([...KV_COMMANDS, ...SERVER_COMMANDS].map((c) => [c.name, c]));

/** Bulk strings up to the value limit plus 1 MiB are read (and get a clean TOO_LARGE); beyond, the connection is refused. */
export function respLimits(maxValueBytes: number): RespDecoderLimits {
  const maxBulkBytes = maxValueBytes + (1 << 20);
  return { ...DEFAULT_RESP_LIMITS, maxBulkBytes, maxCommandBytes: Math.max(DEFAULT_RESP_LIMITS.maxCommandBytes, maxBulkBytes + (64 << 10)) };
}

export async function startRespDoor(ctx: DoorContext, opts: RespDoorOptions): Promise<Door> {
  const kv = new KvOps(ctx.executor, ctx.limits);
  const open = new Map<number, { conn: RespConnection; socket: net.Socket }>();
  const limits = respLimits(ctx.limits.maxValueBytes);
  const maxPending = opts.maxPendingWriteBytes ?? 16 << 20;
  const maxUnsent = opts.maxUnsentBytes ?? MAX_UNSENT_BYTES;
  const partialMs = opts.partialCommandTimeoutMs ?? 30_000;
  const closeGraceMs = opts.closeGraceMs ?? 1000;
  let nextId = 1;
  let address = opts.listen;
  const server: RespServer = {
    kv,
    updater: new KeyUpdater(kv),
    writes: new RespWriteBatcher(kv, { lingerMs: opts.writeLingerMs }),
    cursors: new ScanCursors(),
    ctx,
    commands: RESP_COMMANDS,
    get address() {
      return address;
    },
    connections: () => open.size,
    clientList: () => [...open.values()].map((o) => o.conn),
    stats: { connectionsReceived: 0, commandsProcessed: 0 },
  };

  // Half-open allowed: a client that shuts down its sending side still gets its replies
  // (the session closes the connection once they are all written).
  const listener = net.createServer({ allowHalfOpen: true }, (socket) => {
    const conn: RespConnection = {
      id: nextId++,
      version: 2,
      name: '',
      lib: '',
      openedAt: Date.now(),
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
      closeAfterReply: false,
    };
    open.set(conn.id, { conn, socket });
    server.stats.connectionsReceived++;
    ctx.connectionOpened('resp');
    socket.setNoDelay(true);
    if (opts.idleTimeoutMs) socket.setTimeout(opts.idleTimeoutMs, () => socket.destroy());
    let closeTimer: NodeJS.Timeout | undefined;
    let closing = false;
    let corked = false;
    let busy = false;
    let blockedOnWrites = false;
    const updateReading = (): void => {
      if (busy || blockedOnWrites) socket.pause();
      else socket.resume();
    };
    const session = new RespSession(
      server,
      conn,
      {
        write: (bytes) => {
          if (socket.destroyed) return;
          if (!corked) {
            corked = true;
            socket.cork();
            process.nextTick(() => {
              corked = false;
              socket.uncork();
            });
          }
          socket.write(bytes);
          if (socket.writableLength > maxUnsent) socket.destroy();
          else if (!blockedOnWrites && socket.writableLength > maxPending) {
            blockedOnWrites = true;
            updateReading();
          }
        },
        end: () => {
          socket.end();
          // A client that half-closed already closes with this, however slowly it reads its replies.
          // One that may still be sending (QUIT, a protocol error) is closed closeGraceMs after every
          // reply has left (as Redis closes once the reply is written), not before: a slow reader
          // of a long pipeline's replies still gets them all.
          if (!socket.readableEnded && !closing) {
            closing = true;
            socket.once('finish', () => {
              closeTimer = setTimeout(() => socket.destroy(), closeGraceMs);
            });
          }
        },
      },
      { maxPipeline: opts.maxPipeline, limits },
    );
    session.onBusy = (b) => {
      busy = b;
      updateReading();
    };
    // Not socket.setTimeout, an idle timer that a byte every few seconds keeps from firing: a fuzz
    // test held 5,000 connections with half a command each for as long as it liked.
    let partialTimer: NodeJS.Timeout | undefined;
    session.onInput = (partial, progressed) => {
      if (!partial || progressed) {
        clearTimeout(partialTimer);
        partialTimer = undefined;
      }
      if (partial && partialTimer === undefined) partialTimer = setTimeout(() => socket.destroy(), partialMs);
    };
    socket.on('drain', () => {
      if (blockedOnWrites) {
        blockedOnWrites = false;
        updateReading();
      }
    });
    socket.on('data', (chunk: Buffer) => session.push(chunk));
    socket.on('end', () => session.endOfInput());
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(partialTimer);
      clearTimeout(closeTimer);
      session.abort();
      open.delete(conn.id);
      ctx.connectionClosed('resp');
    });
  });
  listener.maxConnections = opts.maxConnections ?? 10_000;
  address = await listenAddress(listener, opts.listen, (e) => ctx.log.warn('resp door: a connection could not be accepted', { error: e }));
  return {
    name: 'resp',
    address,
    close: () =>
      new Promise<void>((resolve) => {
        for (const { socket } of open.values()) socket.destroy();
        listener.close(() => resolve());
      }),
  };
}
