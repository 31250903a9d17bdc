// Serves outgoing snapshots from pinned LMDB read transactions: the image is the state machine as
// of a commit, read in bounded chunks by cursor, so memory stays flat however large the store.
import type { Transaction } from 'lmdb';
import type { SnapshotSource } from '../raft/types.ts';
import type { Env } from './env.ts';
import { RaftKey, decodeGeneration, decodeIndex } from './records.ts';
import { requireRaft } from './raft-table.ts';
import { CHUNK_TRAILER, TABLES, encodeChunk, recordSize, type ImageRecord } from './snapshot-image.ts';
import type { Tables } from './tables.ts';

interface Pin {
  txn: Transaction;
  tables: Tables;
  refs: number;
}

export class SnapshotReader implements SnapshotSource {
  private readonly pins = new Map<number, Pin>();

  constructor(
    private readonly env: Env,
    private readonly tables: (generation: 0 | 1) => Tables,
  ) {}

  capture(): number {
    const txn = this.env.root.useReadTransaction();
    let applied: number;
    let generation: 0 | 1;
    try {
      // Read inside the pinned transaction: the index and the image come from the same commit.
      applied = requireRaft(this.env, RaftKey.applied, decodeIndex, txn);
      generation = requireRaft(this.env, RaftKey.generation, decodeGeneration, txn);
    } catch (e) {
      txn.done();
      throw e;
    }
    const pin = this.pins.get(applied);
    if (pin) {
      // Same applied index, same state: share the older pin.
      pin.refs++;
      txn.done();
    } else {
      this.pins.set(applied, { txn, tables: this.tables(generation), refs: 1 });
    }
    return applied;
  }

  /**
   * Records from `cursor` (null: the start) until the next would pass maxBytes; a chunk holds at
   * least one record, so one larger than maxBytes travels alone. `next` is null after the last.
   */
  read(index: number, cursor: Uint8Array | null, maxBytes: number): { data: Uint8Array; next: Uint8Array | null } {
    const pin = this.pins.get(index);
    if (!pin) throw new Error(`no snapshot captured at index ${index}`);
    const records: ImageRecord[] = [];
    let size = CHUNK_TRAILER;
    let start: Uint8Array | undefined = cursor ? cursor.subarray(1) : undefined;
    for (let table = cursor ? cursor[0]! : 0; table < TABLES.length; table++, start = undefined) {
      for (const r of pin.tables.range(TABLES[table]!, { ...(start ? { start } : {}), transaction: pin.txn })) {
        const bytes = recordSize(r.key, r.stored);
        if (records.length > 0 && size + bytes > maxBytes) {
          return { data: encodeChunk(records), next: Buffer.concat([Buffer.of(table), r.key]) };
        }
        records.push({ table, key: r.key, stored: r.stored });
        size += bytes;
      }
    }
    return { data: encodeChunk(records), next: null };
  }

  release(index: number): void {
    const pin = this.pins.get(index);
    if (!pin) return;
    if (--pin.refs > 0) return;
    this.pins.delete(index);
    pin.txn.done();
  }

  releaseAll(): void {
    for (const pin of this.pins.values()) pin.txn.done();
    this.pins.clear();
  }
}
