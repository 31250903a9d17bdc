// The replica's storage seam over a store and the state machine: a Ready is persisted as is (an
// installed snapshot brings its own partition ownership), committed entries are planned by the
// state machine and applied by the store, and each client write is answered from its result.
// Shared by the server (LMDB store) and the simulator (the same store over memory).
import type { Entry, Ready } from '../raft/types.ts';
import { decodeOwnership } from './ownership.ts';
import type { Command, CommandResult } from '../storage/types.ts';
import type { Response } from '../wire/index.ts';
import type { ReplicaStorage } from './replica.ts';
import { OWNERSHIP_META, toResponse, type StateMachine } from './state-machine.ts';

/** What the seam needs of a store (ReplicaStore, over LMDB or memory). */
export interface MachineStore {
  persist(rd: Ready): Promise<void>;
  apply(index: number, commands: readonly Command[], onResults?: (results: CommandResult[]) => void): Promise<CommandResult[]>;
  getMeta(name: string): Uint8Array | undefined;
  commitSoon(): void;
  /** Removes the store's blank mark (ReplicaStore.clearBlank); absent: no mark kept. */
  clearBlank?(): void;
}

export function machineStorage(store: MachineStore, sm: StateMachine): ReplicaStorage {
  return {
    commitSoon: () => store.commitSoon(),
    clearBlank: () => store.clearBlank?.(),
    persist: async (rd) => {
      await store.persist(rd);
      if (rd.snapshot && sm.sharded) {
        const own = store.getMeta(OWNERSHIP_META);
        sm.restore(own ? decodeOwnership(own) : undefined, rd.snapshot.index);
      }
    },
    apply: async (entries: Entry[], onAnswers: (answers: Map<number, Response>) => void) => {
      const plan = sm.plan(entries);
      const planned = sm.ownership; // as of this batch's last entry (the next batch may move it on)
      const answersOf = (results: CommandResult[]): Map<number, Response> => {
        const out = new Map<number, Response>();
        for (const a of plan.answers) {
          if (a.fixed) out.set(a.index, a.fixed);
          else if (a.command !== undefined && a.request) out.set(a.index, toResponse(a.request, results[a.command]!));
        }
        return out;
      };
      const last = entries.at(-1)!.index;
      await store.apply(last, plan.commands, (results) => onAnswers(answersOf(results)));
      // Only now is the batch's data visible: reads go by its ownership from here on.
      sm.publish(planned, last);
    },
  };
}
