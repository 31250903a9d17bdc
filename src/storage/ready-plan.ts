// Checks a Ready against the store's view and the Raft contract, before anything is written, and
// says what to write. A violation is a bug in the caller: it throws and nothing is queued.
import type { Entry, HardState, Ready, SnapshotMeta } from '../raft/types.ts';
import { sameSnapshot, type Book } from './book.ts';
import { StorageError } from './errors.ts';
import type { StageState } from './records.ts';
import { unseal } from './sealed.ts';
import { decodeChunk, type ImageRecord } from './snapshot-image.ts';

export interface StageStep {
  /** Start a new image: empty the staging generation first. */
  clear: boolean;
  records: ImageRecord[];
  stage: StageState;
}

export interface Plan {
  stageGeneration: 0 | 1;
  stageSteps: StageStep[];
  install: SnapshotMeta | undefined;
  compaction: { from: number; meta: SnapshotMeta } | undefined;
  /** The stored suffix from..to (inclusive) the new entries replace. */
  truncate: { from: number; to: number } | undefined;
  entries: readonly Entry[];
  hardState: HardState | undefined;
  /** The book once this Ready is on disk. */
  next: Book;
}

/** `termAt` reads the term of a stored log entry (for checking a compaction point). */
export function planReady(ready: Ready, book: Book, termAt: (index: number) => number | undefined): Plan {
  const next: Book = { ...book };
  const stageGeneration = book.generation === 0 ? 1 : 0;
  const stageSteps = ready.snapshotChunks.flatMap((chunk) => {
    const step = planChunk(chunk, next.stage);
    if (step) next.stage = step.stage;
    return step ? [step] : [];
  });

  const install = ready.snapshot;
  if (install) {
    const s = next.stage;
    if (!s || !s.complete || !sameSnapshot(s.meta, install)) {
      throw new StorageError(`install of snapshot ${install.index}/${install.term}: no complete staged image for it`);
    }
    if (install.index < next.applied) {
      throw new StorageError(`install of snapshot ${install.index} would move the state machine back from ${next.applied}`);
    }
    Object.assign(next, { base: install, lastIndex: install.index, applied: install.index, generation: stageGeneration, stage: undefined });
  }

  let compaction: Plan['compaction'];
  const c = ready.compaction;
  if (c && c.index > next.base.index) {
    if (c.index > next.applied || c.index > next.lastIndex) {
      throw new StorageError(`compaction to ${c.index} beyond applied ${next.applied} / last ${next.lastIndex}`);
    }
    const term = termAt(c.index);
    if (term !== c.term) throw new StorageError(`compaction to ${c.index}/${c.term} but the entry has term ${term}`);
    compaction = { from: next.base.index + 1, meta: c };
    next.base = c;
  }

  let truncate: Plan['truncate'];
  const entries = ready.entries;
  const first = entries[0];
  if (first) {
    entries.forEach((e, i) => {
      if (e.index !== first.index + i) throw new StorageError(`entries not contiguous at ${e.index}`);
    });
    if (first.index <= next.base.index || first.index > next.lastIndex + 1) {
      throw new StorageError(`entries from ${first.index} do not attach to the log (${next.base.index}, ${next.lastIndex}]`);
    }
    if (first.index <= next.applied) throw new StorageError(`entries from ${first.index} would overwrite applied entries`);
    if (first.index <= next.lastIndex) truncate = { from: first.index, to: next.lastIndex };
    next.lastIndex = first.index + entries.length - 1;
  }

  const hs = ready.hardState;
  if (hs) {
    if (hs.term < book.hardState.term) throw new StorageError(`hard state term going back from ${book.hardState.term} to ${hs.term}`);
    if (hs.commit > next.lastIndex) throw new StorageError(`hard state commit ${hs.commit} beyond the last index ${next.lastIndex}`);
    next.hardState = hs;
  }
  return { stageGeneration, stageSteps, install, compaction, truncate, entries, hardState: hs, next };
}

function planChunk(chunk: Ready['snapshotChunks'][number], stage: StageState | undefined): StageStep | undefined {
  const label = `snapshot ${chunk.meta.index}/${chunk.meta.term} chunk ${chunk.seq}`;
  if (chunk.seq !== 0) {
    if (!stage || !sameSnapshot(stage.meta, chunk.meta)) throw new StorageError(`${label}: no staged image to continue`);
    if (chunk.seq < stage.nextSeq) return undefined; // a duplicate of a chunk already staged
    if (chunk.seq > stage.nextSeq) throw new StorageError(`${label}: expected chunk ${stage.nextSeq}`);
  }
  let records: ImageRecord[];
  try {
    records = decodeChunk(chunk.data);
  } catch (e) {
    throw new StorageError(`${label}: ${(e as Error).message}`);
  }
  for (const r of records) {
    if (!unseal(r.key, r.stored)) throw new StorageError(`${label}: a record fails its checksum`);
  }
  return {
    clear: chunk.seq === 0,
    records,
    stage: { meta: chunk.meta, nextSeq: chunk.seq + 1, complete: chunk.last },
  };
}
