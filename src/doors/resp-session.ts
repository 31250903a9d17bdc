// One RESP connection's logic, independent of the socket: decode commands, run them in an order
// that respects the connection's program order, and answer strictly in request order.
//
// Ordering. Every command gets a slot when it is decoded; replies leave in slot order. Effects
// follow the connection's order through three modes:
//   - reads run side by side;
//   - blind writes (plain SET, MSET) are proposed at once, in order, without waiting for the ones
//     before them: a pipeline of SETs shares Raft rounds and fsyncs instead of paying one each;
//   - read-modify-write commands (INCR, SET NX/XX/GET, DEL, ...) run alone.
// A command waits until everything before it of another mode (or any exclusive command) has
// finished, and holds back everything after it. So "SET k v; GET k" reads v, pipelined INCRs apply
// in order, and a write never overtakes a read before it. Commands that touch no data (PING, INFO,
// ...) run at once.
//
// Blind writes go to the door's RespWriteBatcher (resp-write-batcher.ts), which proposes them in
// the order they are handed over, merged with other connections' into one native batch per
// event-loop iteration, under the door's exactly-once session: a batch is never applied after a
// later one (the state machine refuses a lower seq), even when the router retries it across a
// leader change. So a connection's writes apply in its order, or a write is not applied at all
// (-TRYAGAIN); a -TIMEOUT write may still apply, but not after a later write of the connection.
// The blind writes a connection decodes together (or that queued behind other commands) are handed
// over as one contribution (up to maxBatchOps puts / maxBatchBytes). The session tells the batcher
// when an answer left it with nothing to do and when its client sends again, so that a batch can
// wait for the clients that were answered together to come back together.
//
// A bounded number of commands may be decoded and unanswered; past that the transport is asked to
// stop reading (`onBusy`), so a client pipelining without reading its replies holds a bounded amount
// of memory. When the client stops sending (`endOfInput`: it half-closed, as `nc -N` or a
// `shutdown(SHUT_WR)` does), every command it sent still runs and is answered, as Redis runs what
// it has read, and then the connection closes. When the transport closes (`abort`), unsent replies
// and queued commands are dropped; writes already proposed may still apply, their answers go
// nowhere.
import type { BatchOp } from '../wire/index.ts';
import { RespDecoder, RespProtocolError, encodeReply, resp, type RespDecoderLimits, type RespValue, type RespVersion } from './resp-codec.ts';
import { lower, outcomeOf, replyForError, text, type RespCommand, type RespConnection, type RespEnv, type RespServer } from './resp-command.ts';

export interface RespSink {
  write(bytes: Buffer): void;
  /** Close once everything written so far is sent. */
  end(): void;
}

/** How a command orders against the others of its connection (see the header). */
type Mode = 'read' | 'put' | 'exclusive';

/**
 * One decoded command: its place in the reply order and, until it starts, its job. One object per
 * command and no closures: the GET path allocates little (a CPU profile showed closure creation
 * and GC on it).
 */
interface Cmd {
  reply: Buffer | null;
  /** Close the connection once this reply is written (QUIT, protocol error). */
  close: boolean;
  mode: Mode;
  cmd: RespCommand | undefined;
  name: string;
  args: Buffer[];
  started: number;
  /** An answer is encoded as the connection spoke when it was asked. */
  version: RespVersion;
  /** Blind writes: the puts and their key + value bytes. */
  puts: BatchOp[] | null;
  bytes: number;
}

export interface RespSessionOptions {
  /** Commands decoded and not yet answered before reading stops. */
  maxPipeline?: number;
  /**
   * Arguments of those commands held before reading stops (one command is always taken). Each
   * argument is a Buffer of its own (~100 bytes even when empty), and a command may have 131,072:
   * counted by commands alone, 400 such commands behind a slow one held 2.1 GB and stalled the
   * event loop in GC, and 1024 pass the heap limit (found by fuzzing, 2026-12-07).
   */
  maxPipelineArgs?: number;
  limits?: Partial<RespDecoderLimits>;
  /** Most puts, and bytes, in one combined batch. */
  maxBatchOps?: number;
  maxBatchBytes?: number;
}

/** Transaction commands: refused (see refuseTransaction), named in metrics all the same. */
const TRANSACTION = new Set(['multi', 'exec', 'discard']);

export class RespSession {
  /** After MULTI: commands are refused until EXEC or DISCARD. */
  private refusingTransaction = false;
  private readonly decoder: RespDecoder;
  private readonly slots: Cmd[] = [];
  private readonly waiting: Cmd[] = [];
  private readonly env: RespEnv;
  /** Jobs started and not finished, all of mode `runMode`. */
  private running = 0;
  private runMode: Mode = 'read';
  private stopped = false;
  /** The client sent its last byte: close once every command it sent is answered. */
  private inputEnded = false;
  private pumping = false;
  /** A batch's replies are being filled in: flush once at the end. */
  private settling = false;
  private busy = false;
  private readonly maxPipeline: number;
  private readonly maxPipelineArgs: number;
  /** Arguments of the commands in `slots` (decoded, reply not yet written). */
  private heldArgs = 0;
  private readonly maxBatchOps: number;
  private readonly maxBatchBytes: number;
  /** Called with true when the transport should stop reading, false when it may read again. */
  onBusy: (busy: boolean) => void = () => {};
  /**
   * After each pass over the input: whether the decoder holds part of a command and waits for the
   * client to send the rest (not while the door itself stopped reading), and whether a command
   * completed in that pass. The door times out a client that stalls mid-command.
   */
  onInput: (partial: boolean, progressed: boolean) => void = () => {};

  constructor(
    private readonly server: RespServer,
    readonly conn: RespConnection,
    private readonly sink: RespSink,
    opts: RespSessionOptions = {},
  ) {
    this.decoder = new RespDecoder(opts.limits);
    this.maxPipeline = opts.maxPipeline ?? 1024;
    this.maxPipelineArgs = opts.maxPipelineArgs ?? 256 * 1024;
    this.maxBatchOps = opts.maxBatchOps ?? 1024;
    this.maxBatchBytes = opts.maxBatchBytes ?? 2 << 20;
    this.env = { server, conn };
  }

  /** Bytes from the client. */
  push(chunk: Uint8Array): void {
    this.server.writes.arrived(this);
    if (this.stopped) return;
    this.decoder.push(chunk);
    this.pump();
  }

  /** The client will send nothing more: its commands run and are answered, then the connection closes. */
  endOfInput(): void {
    this.inputEnded = true;
    this.server.writes.arrived(this); // sends nothing more: no batch waits for it
    this.closeIfDone();
  }

  /**
   * After the end of input, once nothing is left to answer. The pump decodes everything it can
   * before a slot frees up, so what is still buffered then is an incomplete command: dropped.
   */
  private closeIfDone(): void {
    if (!this.inputEnded || this.stopped || this.pumping || this.slots.length > 0) return;
    this.stopped = true;
    this.sink.end();
  }

  /** The transport closed: answers still in flight are dropped, queued commands never run. */
  abort(): void {
    this.server.writes.arrived(this);
    this.stopped = true;
    this.slots.length = 0;
    this.heldArgs = 0;
    this.waiting.length = 0;
  }

  /** Enough decoded and unanswered: stop reading until replies go out. */
  private get full(): boolean {
    return this.slots.length >= this.maxPipeline || this.heldArgs >= this.maxPipelineArgs;
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    let partial = false;
    let progressed = false;
    try {
      while (!this.stopped && !this.full) {
        let args: Buffer[] | null;
        try {
          args = this.decoder.next();
        } catch (e) {
          if (!(e instanceof RespProtocolError)) throw e;
          // Redis answers a protocol error and closes: the stream cannot be resynchronised.
          this.stopped = true;
          const c = this.newCmd([], undefined, 'protocol_error');
          c.reply = encodeReply(resp.error(`ERR Protocol error: ${e.message}`), this.conn.version);
          c.close = true;
          this.slots.push(c);
          this.server.ctx.observe('resp', 'protocol_error', 0, 'ERR');
          break;
        }
        if (args === null) {
          partial = this.decoder.bufferedBytes > 0;
          break;
        }
        progressed = true;
        this.dispatch(args);
      }
      // Started once the whole chunk is decoded, so the blind writes in it leave as one batch.
      this.drain();
    } finally {
      this.pumping = false;
    }
    this.flush();
    this.setBusy(this.full);
    this.onInput(partial && !this.stopped, progressed);
  }

  private setBusy(busy: boolean): void {
    if (busy === this.busy) return;
    this.busy = busy;
    this.onBusy(busy);
  }

  private newCmd(args: Buffer[], cmd: RespCommand | undefined, name: string): Cmd {
    return { reply: null, close: false, mode: 'read', cmd, name, args, started: performance.now(), version: this.conn.version, puts: null, bytes: 0 };
  }

  private dispatch(args: Buffer[]): void {
    const name = lower(args[0]!);
    const cmd = this.server.commands.get(name);
    const c = this.newCmd(args, cmd, cmd ? name : TRANSACTION.has(name) ? name : 'unknown');
    this.slots.push(c);
    this.heldArgs += args.length;
    if (this.refusingTransaction || TRANSACTION.has(name)) {
      const refused = this.refuseTransaction(name);
      if (refused) return this.finish(c, refused);
    }
    if (!cmd) return this.finish(c, resp.error(unknownCommand(args)));
    if (cmd.arity > 0 ? args.length !== cmd.arity : args.length < -cmd.arity) {
      return this.finish(c, resp.error(`ERR wrong number of arguments for '${name}' command`));
    }
    const puts = cmd.puts?.(args);
    if (puts) {
      try {
        this.server.kv.checkBatch(puts); // a bad SET fails alone, never the batch it would join
      } catch (e) {
        return this.finish(c, replyForError(e));
      }
      let bytes = 0;
      for (const o of puts) bytes += o.key.length + (o.op === 'put' ? o.value.length : 0);
      c.mode = 'put';
      c.puts = puts;
      c.bytes = bytes;
      this.waiting.push(c);
      return;
    }
    if (cmd.kind === 'none') return void this.runCommand(c);
    c.mode = cmd.kind === 'read' ? 'read' : 'exclusive';
    this.waiting.push(c);
  }

  /**
   * MULTI is not supported, but a client that sends MULTI, commands, EXEC expects all or nothing:
   * running the commands one by one would half-apply a transaction the client saw fail. So after
   * MULTI nothing runs until EXEC (answered EXECABORT) or DISCARD. Undefined: run the command.
   */
  private refuseTransaction(name: string): RespValue | undefined {
    if (name === 'multi') {
      this.refusingTransaction = true;
      return resp.error('ERR MULTI is not supported by this server: commands up to EXEC or DISCARD will not run');
    }
    if (name === 'exec' || name === 'discard') {
      if (!this.refusingTransaction) return resp.error(`ERR ${name.toUpperCase()} without MULTI`);
      this.refusingTransaction = false;
      return name === 'exec' ? resp.error('EXECABORT Transaction discarded: MULTI is not supported by this server') : resp.simple('OK');
    }
    if (name === 'quit') return undefined;
    if (name === 'reset') {
      this.refusingTransaction = false; // RESET leaves a transaction, as in Redis, and then runs
      return undefined;
    }
    return resp.error('ERR command not run: it follows MULTI, which this server does not support (send DISCARD)');
  }

  private finish(c: Cmd, reply: RespValue, version = c.version): void {
    this.server.stats.commandsProcessed++;
    this.server.ctx.observe('resp', c.name, (performance.now() - c.started) / 1000, outcomeOf(reply));
    c.reply = encodeReply(reply, version);
    if (!this.pumping && !this.settling) this.flush();
  }

  private runCommand(c: Cmd): void | Promise<void> {
    let result: RespValue | Promise<RespValue>;
    try {
      result = c.cmd!.run(c.args, this.env);
    } catch (e) {
      result = replyForError(e);
    }
    if (result instanceof Promise) return this.finishLater(c, result);
    if (this.conn.closeAfterReply) {
      c.close = true;
      this.stopped = true; // QUIT: nothing after it is read
    }
    this.finish(c, result, this.conn.version); // synchronous: HELLO's answer already speaks the version it chose
  }

  private async finishLater(c: Cmd, result: Promise<RespValue>): Promise<void> {
    let reply: RespValue;
    try {
      reply = await result;
    } catch (e) {
      reply = replyForError(e);
    }
    this.finish(c, reply);
  }

  /** Starts the jobs at the head of the queue that may run now. */
  private drain(): void {
    while (this.waiting.length > 0) {
      const job = this.waiting[0]!;
      if (this.running > 0 && (job.mode !== this.runMode || job.mode === 'exclusive')) return;
      this.running++;
      this.runMode = job.mode;
      if (job.mode === 'put') {
        this.startPuts();
        continue;
      }
      this.waiting.shift();
      const p = this.runCommand(job);
      if (p) void p.then(this.jobDone);
      else this.running--; // finished already (a synchronous command)
    }
  }

  private readonly jobDone = (): void => {
    this.running--;
    this.drain();
  };

  /** The blind writes at the head of the queue, handed to the door's batcher as one contribution. */
  private startPuts(): void {
    const first = this.waiting.shift()!;
    const group = [first];
    let ops = first.puts!;
    let bytes = first.bytes;
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (next.mode !== 'put' || ops.length + next.puts!.length > this.maxBatchOps || bytes + next.bytes > this.maxBatchBytes) break;
      this.waiting.shift();
      if (group.length === 1) ops = [...ops];
      for (const o of next.puts!) ops.push(o);
      bytes += next.bytes;
      group.push(next);
    }
    this.server.writes.add(ops, bytes, (reply) => {
      // Every reply is in place before anything is flushed or read: reading one command per reply
      // written would start a batch per command.
      this.settling = true;
      for (const j of group) this.finish(j, reply);
      this.settling = false;
      this.running--;
      this.flush();
      this.drain();
      // Everything answered: a client in a closed loop sends its next command now (the batcher
      // may wait for it, resp-write-batcher.ts).
      return this.slots.length === 0 && !this.stopped && !this.inputEnded;
    }, this);
  }

  private flush(): void {
    let wrote = false;
    while (this.slots.length > 0 && this.slots[0]!.reply !== null) {
      const slot = this.slots.shift()!;
      this.heldArgs -= slot.args.length;
      this.sink.write(slot.reply!);
      wrote = true;
      if (slot.close) {
        this.abort();
        // Reading again (what follows is discarded): left paused from a full pipeline, the door
        // never saw the client's FIN, and closed with its bytes unread, i.e. with a reset.
        this.setBusy(false);
        this.sink.end();
        return;
      }
    }
    if (wrote && !this.pumping && !this.stopped && this.decoder.bufferedBytes > 0) this.pump();
    else if (wrote && !this.pumping) this.setBusy(this.full);
    this.closeIfDone();
  }
}

/** Redis's wording, arguments cut to 128 characters in all. */
function unknownCommand(args: Buffer[]): string {
  let rest = '';
  for (let i = 1; i < args.length && rest.length < 128; i++) rest += `'${text(args[i]!).slice(0, 128 - rest.length)}' `;
  return `ERR unknown command '${text(args[0]!).slice(0, 128)}', with args beginning with: ${rest}`;
}
