// One RESP connection's logic, independent of the socket: decode commands, run them in an order
// that respects the connection's program order, and answer strictly in request order.
//
// Ordering: reads run side by side; a write waits until everything before it has finished and
// holds back everything after it (so "SET k v; GET k" pipelined reads v, and pipelined INCRs
// apply in order). Commands that touch no data (PING, INFO, ...) run at once. Replies wait in
// per-command slots and leave in request order.
//
// Group commit at the door: blind writes (plain SET, MSET) that queue up behind a running write
// leave together as one native batch when their turn comes, so `redis-cli --pipe` costs one Raft
// round per run of writes, not one per SET. Each key's writes stay in order (a key lives in one
// partition, and a batch is applied in order within a partition).
//
// A bounded number of commands may be in flight; past that the transport is asked to stop reading
// (`onBusy`), so a client pipelining without reading its replies holds a bounded amount of memory.
import type { BatchOp } from '../wire/index.ts';
import { RespDecoder, RespProtocolError, encodeReply, resp, type RespDecoderLimits, type RespValue } from './resp-codec.ts';
import { lower, outcomeOf, replyForError, text, type CommandKind, type RespConnection, type RespServer } from './resp-command.ts';

export interface RespSink {
  write(bytes: Buffer): void;
  /** Close once everything written so far is sent. */
  end(): void;
}

interface Slot {
  reply: Buffer | null;
  close: boolean;
}

interface Job {
  kind: CommandKind;
  /** Runs the command and settles its slot. */
  run: () => void | Promise<void>;
  /** Blind writes only: the puts, and how to settle the slot once they are applied. */
  puts?: BatchOp[];
  finish: (reply: RespValue) => void;
}

export interface RespSessionOptions {
  /** Commands decoded and not yet answered before reading stops. */
  maxPipeline?: number;
  limits?: Partial<RespDecoderLimits>;
  /** Most puts, and bytes, in one combined batch. */
  maxBatchOps?: number;
  maxBatchBytes?: number;
}

export class RespSession {
  private readonly decoder: RespDecoder;
  private readonly slots: Slot[] = [];
  private readonly waiting: Job[] = [];
  private running = 0;
  private writeRunning = false;
  private stopped = false;
  private pumping = false;
  private busy = false;
  private readonly maxPipeline: number;
  private readonly maxBatchOps: number;
  private readonly maxBatchBytes: number;
  /** Called with true when the transport should stop reading, false when it may read again. */
  onBusy: (busy: boolean) => void = () => {};

  constructor(
    private readonly server: RespServer,
    readonly conn: RespConnection,
    private readonly sink: RespSink,
    opts: RespSessionOptions = {},
  ) {
    this.decoder = new RespDecoder(opts.limits);
    this.maxPipeline = opts.maxPipeline ?? 1024;
    this.maxBatchOps = opts.maxBatchOps ?? 1024;
    this.maxBatchBytes = opts.maxBatchBytes ?? 2 << 20;
  }

  /** Bytes from the client. */
  push(chunk: Uint8Array): void {
    if (this.stopped) return;
    this.decoder.push(chunk);
    this.pump();
  }

  /** The transport closed: answers still in flight are dropped. */
  abort(): void {
    this.stopped = true;
    this.slots.length = 0;
    this.waiting.length = 0;
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.stopped && this.slots.length < this.maxPipeline) {
        let args: Buffer[] | null;
        try {
          args = this.decoder.next();
        } catch (e) {
          if (!(e instanceof RespProtocolError)) throw e;
          // Redis answers a protocol error and closes: the stream cannot be resynchronised.
          this.stopped = true;
          this.slots.push({ reply: encodeReply(resp.error(`ERR Protocol error: ${e.message}`), this.conn.version), close: true });
          this.server.ctx.observe('resp', 'protocol_error', 0, 'ERR');
          break;
        }
        if (args === null) break;
        this.dispatch(args);
      }
    } finally {
      this.pumping = false;
    }
    this.flush();
    this.setBusy(this.slots.length >= this.maxPipeline);
  }

  private setBusy(busy: boolean): void {
    if (busy === this.busy) return;
    this.busy = busy;
    this.onBusy(busy);
  }

  private dispatch(args: Buffer[]): void {
    const slot: Slot = { reply: null, close: false };
    this.slots.push(slot);
    const name = lower(args[0]!);
    const cmd = this.server.commands.get(name);
    const started = performance.now();
    const version = this.conn.version; // an answer is encoded as the connection spoke when it was asked
    const finish = (reply: RespValue, v = version): void => {
      this.server.ctx.observe('resp', cmd ? name : 'unknown', (performance.now() - started) / 1000, outcomeOf(reply));
      slot.reply = encodeReply(reply, v);
      this.flush();
    };
    if (!cmd) return finish(resp.error(unknownCommand(args)));
    if (cmd.arity > 0 ? args.length !== cmd.arity : args.length < -cmd.arity) {
      return finish(resp.error(`ERR wrong number of arguments for '${name}' command`));
    }
    const puts = cmd.puts?.(args);
    if (puts) {
      try {
        this.server.kv.checkBatch(puts); // a bad SET fails alone, never the batch it would join
      } catch (e) {
        return finish(replyForError(e));
      }
    }
    const run = (): void | Promise<void> => {
      let result: RespValue | Promise<RespValue>;
      try {
        result = cmd.run(args, { server: this.server, conn: this.conn });
      } catch (e) {
        result = replyForError(e);
      }
      if (result instanceof Promise) return result.then(finish, (e: unknown) => finish(replyForError(e)));
      if (this.conn.closeAfterReply) {
        slot.close = true;
        this.stopped = true; // QUIT: nothing after it is read
      }
      finish(result, this.conn.version); // synchronous: HELLO's answer already speaks the version it chose
    };
    this.schedule({ kind: cmd.kind, run, finish, ...(puts ? { puts } : {}) });
  }

  private schedule(job: Job): void {
    if (job.kind === 'none') void job.run();
    else if (this.waiting.length === 0 && this.canStart(job.kind)) this.start(job);
    else this.waiting.push(job);
  }

  private canStart(kind: CommandKind): boolean {
    return kind === 'write' ? this.running === 0 : !this.writeRunning;
  }

  private start(job: Job): void {
    this.running++;
    if (job.kind === 'write') this.writeRunning = true;
    const done = (): void => {
      this.running--;
      if (job.kind === 'write') this.writeRunning = false;
      while (this.waiting.length > 0 && this.canStart(this.waiting[0]!.kind)) this.start(this.waiting.shift()!);
    };
    const p = job.puts ? this.runPuts(job) : job.run();
    if (p) void p.then(done);
    else done();
  }

  /** This job's puts and those of the blind writes queued right behind it, as one batch. */
  private runPuts(first: Job): Promise<void> {
    const group = [first];
    const ops = [...first.puts!];
    let bytes = ops.reduce((n, o) => n + o.key.length + (o.op === 'put' ? o.value.length : 0), 0);
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (!next.puts) break;
      const add = next.puts.reduce((n, o) => n + o.key.length + (o.op === 'put' ? o.value.length : 0), 0);
      if (ops.length + next.puts.length > this.maxBatchOps || bytes + add > this.maxBatchBytes) break;
      this.waiting.shift();
      group.push(next);
      ops.push(...next.puts);
      bytes += add;
    }
    return this.server.kv.batch(ops).then(
      () => group.forEach((j) => j.finish(resp.ok)),
      (e: unknown) => group.forEach((j) => j.finish(replyForError(e))),
    );
  }

  private flush(): void {
    let wrote = false;
    while (this.slots.length > 0 && this.slots[0]!.reply !== null) {
      const slot = this.slots.shift()!;
      this.sink.write(slot.reply!);
      wrote = true;
      if (slot.close) {
        this.abort();
        this.sink.end();
        return;
      }
    }
    if (wrote && !this.pumping && !this.stopped && this.decoder.bufferedBytes > 0) this.pump();
    else if (wrote && !this.pumping) this.setBusy(this.slots.length >= this.maxPipeline);
  }
}

/** Redis's wording, arguments cut to 128 characters in all. */
function unknownCommand(args: Buffer[]): string {
  let rest = '';
  for (let i = 1; i < args.length && rest.length < 128; i++) rest += `'${text(args[i]!).slice(0, 128 - rest.length)}' `;
  return `ERR unknown command '${text(args[0]!).slice(0, 128)}', with args beginning with: ${rest}`;
}
