// Pipeline cost per record without the kernel: synthetic lo-like traffic
// (every data segment twice, ACKs the other way) through reassembly + frames.
//   node --import tsx test/trace/tools/pipeline-bench.ts [records]
import { TracePipeline } from '../../../src/trace/pipeline.ts';
import { TCP_ACK, TCP_SYN, type SegmentRecord } from '../../../src/trace/source.ts';
import { concatBytes, encodeFrame, makeFrames, seg, CLIENT, SERVER } from '../helpers/synth.ts';

const total = Number(process.argv[2] ?? 1_000_000);
const write = concatBytes(makeFrames(7, 48, 5).map(encodeFrame));
const conns = 4;
const records: SegmentRecord[] = [];
const seqs = Array.from({ length: conns }, (_, c) => 1000 * (c + 1));
for (let c = 0; c < conns; c++) {
  const src = { ...CLIENT, port: CLIENT.port + c };
  records.push(seg({ seq: seqs[c] as number, flags: TCP_SYN, src }));
  seqs[c] = (seqs[c] as number) + 1;
}
for (let i = 0; records.length < total; i++) {
  const c = i % conns;
  const src = { ...CLIENT, port: CLIENT.port + c };
  const d = seg({ seq: seqs[c] as number, payload: write, src, ts: BigInt(i) });
  seqs[c] = ((seqs[c] as number) + write.length) >>> 0;
  records.push({ ...d, direction: 'egress' }, { ...d, direction: 'ingress' });
  const ack = seg({ seq: 5000, flags: TCP_ACK, src: SERVER, dst: src, ts: BigInt(i) });
  records.push(ack, ack);
}
let frames = 0;
const p = new TracePipeline({ onFrame: () => frames++ });
const batch = 2000;
// CPU time, not wall time: the machines are shared and wall time is noisy.
const c0 = process.cpuUsage();
for (let i = 0; i < records.length; i += batch) p.push(records.slice(i, i + batch));
const cpu = process.cpuUsage(c0);
const ns = (cpu.user + cpu.system) * 1000;
console.log(
  JSON.stringify({ records: records.length, frames, nsPerRecord: Math.round(ns / records.length), recordsPerSec: Math.round(records.length / (ns / 1e9)) }),
);
