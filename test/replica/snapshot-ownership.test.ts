// A shard replica that installs a snapshot taken before its group applied any configuration (the
// snapshot holds no ownership) must decide every later entry as a replica that replayed the same
// entries does: with the empty ownership of a sharded group, serving nothing. Found in review of
// e31f47d (hand-off entries checked when applied): the install set the ownership to "none",
// which means "not sharded, serve every key", so that replica applied writes (and would apply
// purges and imports) its peers refused with WRONG_GROUP, and the group's copies diverged.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntryType, type Entry, type Ready } from '../../src/raft/types.ts';
import { createPartitioner } from '../../src/partition/index.ts';
import { encodeWrite } from '../../src/replica/commands.ts';
import { machineStorage, type MachineStore } from '../../src/replica/machine-storage.ts';
import { StateMachine } from '../../src/replica/state-machine.ts';
import type { Command, CommandResult } from '../../src/storage/types.ts';
import { HEADER_BYTES, encodeRequest, readFrameHeader, type Request, type Response } from '../../src/wire/index.ts';

/** A store that holds no ownership and applies every command. */
function store(applied: Command[]): MachineStore {
  return {
    persist: () => Promise.resolve(),
    apply: (_index, commands, onResults) => {
      applied.push(...commands);
      const results: CommandResult[] = commands.map(() => ({ outcome: 'applied', results: [{ status: 'ok' }] }));
      onResults?.(results);
      return Promise.resolve(results);
    },
    getMeta: () => undefined,
    commitSoon: () => undefined,
  };
}

function put(index: number, key: Buffer): Entry {
  const req: Request = { op: 'put', key, value: Buffer.from('v'), clientId: 7n, seq: 1 };
  const frame = encodeRequest(0, req);
  return { index, term: 1, type: EntryType.Normal, data: encodeWrite(0, readFrameHeader(frame)!.type, frame.subarray(HEADER_BYTES)) };
}

async function answerTo(s: ReturnType<typeof machineStorage>, e: Entry): Promise<Response | undefined> {
  let answer: Response | undefined;
  await s.apply([e], (answers) => (answer = answers.get(e.index)));
  return answer;
}

describe('ownership after a snapshot install', () => {
  it('a snapshot without ownership leaves a sharded replica serving nothing, like its peers', async () => {
    const partitioner = await createPartitioner(16);
    const key = Buffer.from('k1');

    const replayedCommands: Command[] = [];
    const replayed = new StateMachine(2, partitioner, undefined);
    const replayedAnswer = await answerTo(machineStorage(store(replayedCommands), replayed), put(11, key));

    const installedCommands: Command[] = [];
    const installed = new StateMachine(2, partitioner, undefined);
    const storage = machineStorage(store(installedCommands), installed);
    await storage.persist({ snapshot: { index: 10, term: 1 } } as unknown as Ready);
    const installedAnswer = await answerTo(storage, put(11, key));

    assert.equal(replayedAnswer?.kind === 'error' && replayedAnswer.error.code, 'WRONG_GROUP');
    assert.deepEqual(installedAnswer, replayedAnswer, 'the same answer on both replicas');
    assert.deepEqual(installedCommands, replayedCommands, 'the same commands applied on both replicas');
    assert.equal(installed.readerOwnership().serves(key), false, 'reads are refused too');
  });
});
