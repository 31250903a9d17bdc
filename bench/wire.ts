// Micro-benchmark of the wire codecs (not a test): encode and decode throughput of
//  - client PUTs with 16-byte keys and 100-byte values, and
//  - Raft Append messages carrying 64 entries of ~140 bytes (an encoded PUT each).
// Decoding goes through FrameDecoder fed in 64 KiB chunks, as from a socket.
//   node --import tsx bench/wire.ts [--rounds 7]

import os from 'node:os';
import type { Entry, Message } from '../src/raft/types.ts';
import { MsgType } from '../src/raft/types.ts';
import { decodeRequest, encodeRequest } from '../src/wire/client-codec.ts';
import type { Request } from '../src/wire/client-types.ts';
import { FrameDecoder } from '../src/wire/frame.ts';
import { decodeRaftFrame, encodeRaft } from '../src/wire/raft-codec.ts';

const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 7;
const CHUNK = 64 * 1024;

function key(i: number): Uint8Array {
  return new TextEncoder().encode(`key:${i.toString().padStart(12, '0')}`);
}

function chunked(frames: Buffer[]): Buffer[] {
  const all = Buffer.concat(frames);
  const out: Buffer[] = [];
  for (let p = 0; p < all.length; p += CHUNK) out.push(all.subarray(p, p + CHUNK));
  return out;
}

interface Timing {
  median: number;
  best: number;
}

/** ROUNDS timed runs after one warm-up, in seconds. Best is shown too: on a shared machine the
 * median measures the neighbours as much as the code. */
function time(fn: () => void): Timing {
  fn();
  const ts: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  ts.sort((a, b) => a - b);
  return { median: ts[ts.length >> 1]!, best: ts[0]! };
}

const sum = (a: Timing, b: Timing): Timing => ({ median: a.median + b.median, best: a.best + b.best });

let sink = 0; // keeps results observable so the JIT cannot drop the work

function report(name: string, ops: number, bytes: number, t: Timing, unit: string): void {
  const col = (secs: number) =>
    `${(ops / secs / 1e6).toFixed(2).padStart(6)} M${unit}/s ${(bytes / secs / 1e6).toFixed(0).padStart(5)} MB/s`;
  console.log(`${name.padEnd(30)} median ${col(t.median)}   best ${col(t.best)}`);
}

// ---- client puts ----------------------------------------------------------------------------
const N_PUTS = 200_000;
const value = new Uint8Array(100).fill(0x61);
const puts: Request[] = [];
for (let i = 0; i < N_PUTS; i++) puts.push({ op: 'put', clientId: 0xabcdefn, seq: i + 1, key: key(i), value });
const putFrames = puts.map((r, i) => encodeRequest(i, r));
const putBytes = putFrames.reduce((n, f) => n + f.length, 0);
const putChunks = chunked(putFrames);

const encPut = time(() => {
  for (let i = 0; i < N_PUTS; i++) sink += encodeRequest(i, puts[i]!).length;
});
const decPut = time(() => {
  const d = new FrameDecoder();
  for (const c of putChunks) {
    d.push(c);
    for (let f; (f = d.read()) !== null; ) {
      const r = decodeRequest(f.type, f.body);
      if (r.op === 'put') sink += r.value.length;
    }
  }
});

// ---- raft appends ---------------------------------------------------------------------------
const N_APPENDS = 10_000;
const ENTRIES = 64;
const cmd = putFrames[0]!.subarray(4); // type + id + body: what a replica might log for a PUT
const appends: Message[] = [];
for (let a = 0; a < N_APPENDS; a++) {
  const prevIndex = a * ENTRIES;
  const entries: Entry[] = [];
  for (let i = 1; i <= ENTRIES; i++) entries.push({ index: prevIndex + i, term: 7, type: 0, data: cmd });
  appends.push({ type: MsgType.Append, from: 1, to: 2, term: 7, prevIndex, prevTerm: 7, entries, commit: prevIndex });
}
const appendFrames = appends.map((m) => encodeRaft(m));
const appendBytes = appendFrames.reduce((n, f) => n + f.length, 0);
const appendChunks = chunked(appendFrames);

const encApp = time(() => {
  for (const m of appends) sink += encodeRaft(m).length;
});
const decApp = time(() => {
  const d = new FrameDecoder();
  for (const c of appendChunks) {
    d.push(c);
    for (let f; (f = d.read()) !== null; ) {
      for (const m of decodeRaftFrame(f.type, f.body)) if (m.type === MsgType.Append) sink += m.entries.length;
    }
  }
});

const cpu = os.cpus()[0];
console.log(`command: node --import tsx bench/wire.ts${ROUNDS === 7 ? '' : ` --rounds ${ROUNDS}`}`);
console.log(`machine: ${cpu?.model ?? 'unknown cpu'} x${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`);
console.log(`node ${process.version}; ${ROUNDS} rounds after warm-up, load average ${os.loadavg()[0]!.toFixed(1)}; decode = FrameDecoder (64 KiB chunks) + body decode`);
console.log(`put frame: ${putFrames[0]!.length} bytes (16 B key, 100 B value); append frame: ${appendFrames[0]!.length} bytes (${ENTRIES} × ${cmd.length} B entries)`);
report('put encode', N_PUTS, putBytes, encPut, 'ops');
report('put decode', N_PUTS, putBytes, decPut, 'ops');
report('put encode+decode', N_PUTS, putBytes, sum(encPut, decPut), 'ops');
report(`append(${ENTRIES}) encode`, N_APPENDS, appendBytes, encApp, 'msg');
report(`append(${ENTRIES}) decode`, N_APPENDS, appendBytes, decApp, 'msg');
report(`append(${ENTRIES}) encode+decode`, N_APPENDS, appendBytes, sum(encApp, decApp), 'msg');
report(`  = entries encode+decode`, N_APPENDS * ENTRIES, appendBytes, sum(encApp, decApp), 'ent');
if (sink === 42) console.log('');
