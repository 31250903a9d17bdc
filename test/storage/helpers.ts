// Shared fixtures for the storage tests.
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry, HardState, Ready, SnapshotChunk, SnapshotMeta } from '../../src/raft/types.ts';
import { openReplicaStore, type ReplicaStore } from '../../src/storage/index.ts';

export const CONF = { voters: [1, 2, 3], learners: [] };

export function tempDir(label: string): string {
  return fs.mkdtempSync(join(tmpdir(), `kvs-storage-${label}-`));
}

export function openFresh(dir: string): ReplicaStore {
  const s = openReplicaStore({ path: dir });
  s.load(CONF);
  return s;
}

export function ready(parts: Partial<Ready>): Ready {
  return {
    softState: undefined,
    hardState: undefined,
    snapshotChunks: [],
    snapshot: undefined,
    compaction: undefined,
    entries: [],
    messages: [],
    committedEntries: [],
    readStates: [],
    failedReads: [],
    ...parts,
  };
}

export function entry(index: number, term: number, data = `e${index}/${term}`): Entry {
  return { index, term, type: 0, data: Buffer.from(data) };
}

export function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

export function hs(term: number, commit: number, vote = 1): HardState {
  return { term, vote, commit };
}

export const b = (s: string): Buffer => Buffer.from(s);

/** Streams every chunk of the snapshot `source` holds at `index`. */
export function* chunksOf(source: ReplicaStore, index: number, meta: SnapshotMeta, maxBytes: number): Generator<SnapshotChunk> {
  let cursor: Uint8Array | null = null;
  let seq = 0;
  do {
    const { data, next } = source.snapshots.read(index, cursor, maxBytes);
    yield { meta, seq: seq++, data, last: next === null };
    cursor = next;
  } while (cursor !== null);
}
