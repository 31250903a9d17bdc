// Loopback TCP blaster: measures how fast captured records reach JavaScript and
// how the capture drops when it cannot keep up. Not a test (no assertions).
// The traffic runs in a child process so the consumer's JavaScript does not
// share a thread with the traffic it measures.
//
//   node --import tsx test/trace/tools/blaster.ts [--seconds 5] [--conns 4] [--write 256]
//        [--sink off|count|parse|pipeline] [--snap 256] [--ring 4194304] [--wakeup 65536]
//        [--poll 10] [--directions both|egress] [--slow-us 0] [--drain]
//
// --sink off: traffic without any capture (the baseline); count: records reach JS
// and are only counted; parse: parsed into SegmentRecords; pipeline: reassembled
// and split into frames.
// --drain: consume nothing during the traffic, then time draining the ring into
// JavaScript — the bare ring→JS rate, independent of how fast Node can write.
// --slow-us: busy-wait that long per batch in the consumer, to provoke drops.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openEbpfCapture } from '../../../src/trace/capture.ts';
import type { NativeTracer } from '../../../src/trace/native.ts';
import { TracePipeline } from '../../../src/trace/pipeline.ts';
import { parseBatch } from '../../../src/trace/record.ts';
import { listenInRange, portOf } from '../helpers/live.ts';
import { concatBytes, encodeFrame, makeFrames } from '../helpers/synth.ts';
import { reapOnExit } from '../../support/processes.ts';

const { values: o } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    conns: { type: 'string', default: '4' },
    write: { type: 'string', default: '256' },
    sink: { type: 'string', default: 'count' },
    snap: { type: 'string', default: '256' },
    ring: { type: 'string', default: String(4 << 20) },
    wakeup: { type: 'string', default: String(64 * 1024) },
    poll: { type: 'string', default: '10' },
    directions: { type: 'string', default: 'both' },
    'slow-us': { type: 'string', default: '0' },
    drain: { type: 'boolean', default: false },
    traffic: { type: 'boolean', default: false },
  },
});

if (o.traffic) await traffic();
else await measure();

/** Child: a server and clients writing runs of whole frames; prints the port, waits for "go", prints bytes. */
async function traffic(): Promise<void> {
  const writeSize = Number(o.write);
  const frames = makeFrames(64, 48, 5).map(encodeFrame);
  let payload = concatBytes(frames);
  while (payload.length < 2 * writeSize) payload = concatBytes([payload, payload]);
  let cut = 0;
  for (let i = 0, at = 0; at + (frames[i % frames.length] as Uint8Array).length <= writeSize; i++) {
    at += (frames[i % frames.length] as Uint8Array).length;
    cut = at;
  }
  const chunk = Buffer.from(payload.subarray(0, Math.max(cut, 9)));

  let received = 0;
  const server = await listenInRange((s) => s.on('data', (d: Buffer) => (received += d.length)));
  const port = portOf(server);
  console.log(port);
  const go = createInterface({ input: process.stdin });
  await new Promise((r) => go.once('line', r));
  go.close();

  const conns = await Promise.all(
    Array.from({ length: Number(o.conns) }, async () => {
      const c = net.connect(port, '127.0.0.1');
      c.setNoDelay(true);
      await new Promise((r) => c.once('connect', r));
      return c;
    }),
  );
  const t0 = process.hrtime.bigint();
  let running = true;
  setTimeout(() => (running = false), Number(o.seconds) * 1000);
  await Promise.all(
    conns.map(async (c) => {
      while (running) {
        if (!c.write(chunk)) await new Promise((r) => c.once('drain', r));
        else await new Promise(setImmediate);
      }
      c.end();
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  await Promise.all(conns.map((c) => new Promise((r) => c.once('close', r))));
  server.close();
  console.log(JSON.stringify({ received, elapsed, write: chunk.length }));
}

/** Parent: captures the child's traffic and reports rates. */
async function measure(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => a !== '--drain');
  const child = reapOnExit(spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args, '--traffic'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  }));
  const lines = createInterface({ input: child.stdout });
  const next = () => new Promise<string>((r) => lines.once('line', r));
  const port = Number(await next());

  let records = 0;
  let frames = 0;
  let source;
  let startConsumer = () => {};
  if (o.sink !== 'off') {
    const r = openEbpfCapture({
      ifname: 'lo',
      ports: [port, port],
      snapLen: Number(o.snap),
      ringBytes: Number(o.ring),
      wakeupBytes: Number(o.wakeup),
      directions: o.directions as 'both' | 'egress',
      delivery: { pollMs: Number(o.poll) },
    });
    if (!r.ok) throw new Error(r.reason);
    const src = r.source;
    source = src;
    const pipeline = new TracePipeline({ onFrame: () => frames++ });
    const slowUs = Number(o['slow-us']);
    const busy = () => {
      const end = process.hrtime.bigint() + BigInt(slowUs * 1000);
      while (process.hrtime.bigint() < end);
    };
    // count and parse go to the addon directly, below the SegmentSource.
    const tracer = (src as unknown as { tracer: NativeTracer }).tracer;
    const opts = { pollMs: Number(o.poll) };
    startConsumer = () => {
      if (o.sink === 'count') tracer.start((_b, n) => ((records += n), slowUs && busy()), opts);
      else if (o.sink === 'parse') tracer.start((b) => ((records += parseBatch(b).length), slowUs && busy()), opts);
      else src.start((batch) => ((records += batch.length), pipeline.push(batch), slowUs && busy()));
    };
    if (!o.drain) startConsumer();
  }

  child.stdin.end('go\n');
  const result = JSON.parse(await next()) as { received: number; elapsed: number; write: number };
  let drainSec = 0;
  if (source) {
    const d0 = process.hrtime.bigint();
    if (o.drain) startConsumer();
    await source.stop();
    drainSec = Number(process.hrtime.bigint() - d0) / 1e9;
  }
  const stats = source?.stats();
  await source?.close();
  const t = result.elapsed;
  console.log(
    JSON.stringify({
      sink: o.sink,
      write: result.write,
      conns: Number(o.conns),
      snap: Number(o.snap),
      ring: Number(o.ring),
      seconds: Number(t.toFixed(2)),
      trafficMBps: Number((result.received / t / 1e6).toFixed(1)),
      matchedPerSec: stats ? Math.round(stats.matched / t) : 0,
      delivered: records,
      dropped: stats?.dropped ?? 0,
      dropPct: stats?.matched ? Number(((100 * stats.dropped) / stats.matched).toFixed(2)) : 0,
      batches: stats?.batches ?? 0,
      frames,
      ...(o.drain ? { drainSec: Number(drainSec.toFixed(3)), drainRecordsPerSec: Math.round(records / drainSec) } : {}),
    }),
  );
}
