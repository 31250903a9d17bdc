// Appends numbered records to the log in `dir` as fast as it can and prints each sequence number
// once it is durable, until killed (test/storage/wal.test.ts kills it with SIGKILL).
import { openFileWal } from '../../src/storage/wal.ts';

const dir = process.argv[2]!;
const segmentBytes = Number(process.argv[3] ?? 4096);
const { wal } = openFileWal(dir, { segmentBytes });
const payload = (seq: number): Buffer => Buffer.from(`record ${seq} `.repeat(1 + (seq % 7)));
function burst(): void {
  // Several records per turn, so several share one sync.
  for (let i = 0; i < 1 + (wal.lastSeq % 5); i++) {
    const seq = wal.lastSeq + 1;
    const { durable } = wal.append(payload(seq));
    void durable.then(() => process.stdout.write(`${seq}\n`));
  }
  setImmediate(burst);
}
burst();
