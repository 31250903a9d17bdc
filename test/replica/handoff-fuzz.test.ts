// A seeded, replayable fuzz of the state machine's hand-off rules, from one destination group's log.
// A generator plays the cluster around group 1: configurations that move partitions in and out
// (sometimes skipped, sometimes proposed late), the source freezing and exporting, leaders of group 1
// proposing purges, imports and activations (and abandoning a wave to redo it), client writes, a
// dropped partition's purge, and the entries a stale leader still holds: a wave redone after its
// activation (e31f47d) and any hand-off entry of an earlier stay of a partition here (a leader deposed
// mid-wave, back in office after the partition went round: named with that stay's epoch).
// Replicas restored from snapshots taken along the way apply the same log.
//
// Checked after every entry, on every replica:
//   - each partition's state is the one the generator's own model gives it;
//   - a partition served here (serving, leaving, frozen) holds exactly what it held when activated
//     (the source's frozen data of that stay) plus the client writes the group accepted since: no
//     hand-off entry overwrote or deleted one of them;
//   - a partition neither here nor arriving holds no key;
//   - every restored replica equals its source (ownership and data), and stays equal.
//
// HANDOFF_FUZZ_SEED=<n> replays one run; HANDOFF_FUZZ_SEEDS=<count> (and HANDOFF_FUZZ_STEPS) sweep more.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntryType } from '../../src/raft/types.ts';
import { createPartitioner, type Partitioner } from '../../src/partition/index.ts';
import { HandOffTarget, encodeImport, encodeOwnership, encodePurge, encodeWrite } from '../../src/replica/commands.ts';
import { OWNERSHIP_META, StateMachine } from '../../src/replica/state-machine.ts';
import { PartState, decodeOwnership } from '../../src/replica/ownership.ts';
import type { ClusterConfig } from '../../src/placement/config.ts';
import type { Command } from '../../src/storage/types.ts';
import { HEADER_BYTES, encodeRequest, readFrameHeader, type Request } from '../../src/wire/index.ts';
import { encodeExportChunk } from '../../src/wire/handoff-codec.ts';
import { Rng } from '../wire/helpers.ts';

const P = 4;
const G = 1;
const OTHERS = [2, 3];
const KEYS = Array.from({ length: 24 }, (_, i) => `k${i}`);
const MAX_REPLICAS = 3;

type Phase = 'elsewhere' | 'arriving' | 'served' | 'leaving' | 'frozen' | 'dropping';
const STATE_OF: Record<Phase, PartState> = {
  elsewhere: PartState.Absent,
  arriving: PartState.Arriving,
  served: PartState.Serving,
  leaving: PartState.Leaving,
  frozen: PartState.Frozen,
  dropping: PartState.Dropping,
};

interface Stay {
  /** The configuration epoch at which the partition started arriving: what its entries name. */
  epoch: number;
  /** The source's data once it froze the partition (undefined: not frozen yet, still served there). */
  frozen: Map<string, string> | undefined;
  /** The wave in progress: chunks left to import, once its purge is in. */
  attempt: { purged: boolean; chunks: [string, string][][] } | undefined;
  /** Every entry proposed for this stay, proposed again later by the stale leaders. */
  entries: Uint8Array[];
}

interface Replica {
  sm: StateMachine;
  data: Map<string, string>;
  meta: Map<string, Uint8Array>;
}

const b = (s: string): Buffer => Buffer.from(s);

function apply(r: Replica, commands: readonly Command[]): void {
  for (const c of commands) {
    if (c.type === 'import') for (const it of c.items) r.data.set(Buffer.from(it.key).toString(), Buffer.from(it.value).toString());
    if (c.type !== 'ops') continue;
    for (const op of c.ops) {
      if (op.type === 'put') r.data.set(Buffer.from(op.key).toString(), Buffer.from(op.value).toString());
      else if (op.type === 'delete') r.data.delete(Buffer.from(op.key).toString());
      else if (op.type === 'set-meta') {
        if (op.value) r.meta.set(op.name, op.value);
        else r.meta.delete(op.name);
      } else assert.fail(`unexpected op ${op.type}`);
    }
  }
}

/** One run: `steps` generator actions from `seed`. Throws (naming the step) on the first broken rule. */
export function runHandoffFuzz(seed: number, steps: number, partitioner: Partitioner): { entries: number; stale: number; activations: number } {
  const rng = new Rng(seed);
  const partOf = new Map(KEYS.map((k) => [k, partitioner.partitionOf(b(k))]));
  const keysOf = (p: number): string[] => KEYS.filter((k) => partOf.get(k) === p);
  const group = (id: number): ClusterConfig['groups'][number] => ({ id, replicas: [{ id, address: `127.0.0.1:${9000 + id}` }] });
  const owner = Array.from({ length: P }, (_, p) => (p % 2 === 0 ? G : rng.pick(OTHERS)));
  let config: ClusterConfig = { epoch: 1, partitions: P, loadFactor: 1.25, groups: [G, ...OTHERS].map(group), owner, moves: [] };
  const history: ClusterConfig[] = [config];

  // The generator's model of group 1, and of the rest of the cluster.
  const phase: Phase[] = owner.map((o) => (o === G ? 'served' : 'elsewhere'));
  const expected: Map<string, string>[] = Array.from({ length: P }, () => new Map());
  const remote: Map<string, string>[] = Array.from({ length: P }, () => new Map());
  const stays: (Stay | undefined)[] = new Array<Stay | undefined>(P).fill(undefined);
  const stale: Uint8Array[] = []; // entries of stays (and drops) that are over
  const dropEntries: (Uint8Array[] | undefined)[] = new Array<Uint8Array[] | undefined>(P).fill(undefined);

  const replicas: Replica[] = [{ sm: new StateMachine(G, partitioner, undefined), data: new Map(), meta: new Map() }];
  let index = 0;
  let step = 0;
  let activations = 0;
  let staleSeen = 0;
  let value = 0;
  const fail = (msg: string): never => assert.fail(`seed ${seed}, step ${step} (entry ${index}): ${msg} — replay: HANDOFF_FUZZ_SEED=${seed} HANDOFF_FUZZ_STEPS=${steps}`);

  const contentOf = (r: Replica, p: number): Map<string, string> => new Map([...r.data].filter(([k]) => partOf.get(k) === p));
  const same = (a: Map<string, string>, x: Map<string, string>): boolean => a.size === x.size && [...a].every(([k, v]) => x.get(k) === v);
  const show = (m: Map<string, string>): string => JSON.stringify([...m].sort());

  /**
   * Appends one entry; every replica applies it, then the rules are checked (`checkNow` false: the
   * caller updates the model first). Returns whether a write was accepted.
   */
  const feed = (data: Uint8Array, checkNow = true): boolean => {
    index++;
    let accepted: boolean | undefined;
    const staleBefore = replicas[0]!.sm.stats.staleHandOffs;
    for (const r of replicas) {
      const planned = r.sm.plan([{ index, term: 1, type: EntryType.Normal, data }]);
      apply(r, planned.commands);
      const ok = planned.answers.length > 0 && planned.answers.every((a) => a.fixed === undefined);
      if (accepted !== undefined && ok !== accepted) fail('replicas answered a write differently');
      accepted = ok;
    }
    staleSeen += replicas[0]!.sm.stats.staleHandOffs - staleBefore;
    if (checkNow) check();
    return accepted ?? false;
  };

  const check = (): void => {
    const [first, ...rest] = replicas;
    for (const r of rest) {
      if (JSON.stringify(r.sm.ownership) !== JSON.stringify(first!.sm.ownership)) fail('a restored replica\'s ownership differs from its source\'s');
      if (!same(r.data, first!.data)) fail(`a restored replica's data differs from its source's: ${show(r.data)} vs ${show(first!.data)}`);
    }
    const own = first!.sm.ownership!;
    for (let p = 0; p < P; p++) {
      if (own.state[p] !== STATE_OF[phase[p]!]) fail(`partition ${p} is in state ${own.state[p]}, the model says ${phase[p]}`);
      const held = contentOf(first!, p);
      if (phase[p] === 'served' || phase[p] === 'leaving' || phase[p] === 'frozen') {
        if (!same(held, expected[p]!)) fail(`partition ${p} (${phase[p]}) holds ${show(held)}, served writes and activation gave ${show(expected[p]!)}`);
      }
      if (phase[p] === 'elsewhere' && held.size > 0) fail(`partition ${p}, not here, holds ${show(held)}`);
    }
  };

  /** Group 1's leader proposes the configuration `c` (the newest, or one it read late). */
  const applyConfig = (c: ClusterConfig): void => {
    const newer = c.epoch > replicas[0]!.sm.epoch;
    if (newer) {
      const moves = new Map(c.moves.map((m) => [m.partition, m]));
      for (let p = 0; p < P; p++) {
        const m = moves.get(p);
        const ph = phase[p]!;
        if (m?.to === G && ph !== 'served' && ph !== 'arriving') {
          // A copy still held here (frozen or dropping: a move away whose completion we skip) is
          // stale: the wave's purge clears it, and the drop's entries are a stale leader's now.
          stale.push(...(dropEntries[p] ?? []));
          dropEntries[p] = undefined;
          phase[p] = 'arriving';
          stays[p] = { epoch: c.epoch, frozen: undefined, attempt: undefined, entries: [] };
        } else if (m?.from === G && ph === 'served') {
          phase[p] = 'leaving';
        } else if (!m && c.owner[p] !== G && (ph === 'leaving' || ph === 'frozen')) {
          phase[p] = 'dropping';
        }
      }
    }
    feed(encodeOwnership({ type: 'epoch', group: G, config: c }));
  };

  const nextConfig = (change: (c: ClusterConfig) => void): void => {
    const c: ClusterConfig = { ...config, epoch: config.epoch + 1, owner: [...config.owner], moves: config.moves.map((m) => ({ ...m })) };
    change(c);
    config = c;
    history.push(c);
  };

  const moving = (p: number): boolean => config.moves.some((m) => m.partition === p);

  /** Proposes an entry of a stay's wave; a tenth of them as an earlier version wrote them (any stay). */
  const waveEntry = (stay: Stay, encode: (named: number) => Uint8Array): void => {
    const data = encode(rng.int(10) === 0 ? HandOffTarget.Any : stay.epoch);
    stay.entries.push(encode(stay.epoch));
    feed(data);
  };

  const actions: { weight: number; run: () => void }[] = [
    // A client write to any key: accepted only where the partition is served, as the model says.
    {
      weight: 6,
      run: () => {
        const key = rng.pick(KEYS);
        const p = partOf.get(key)!;
        const del = rng.int(4) === 0;
        const req: Request = del ? { op: 'delete', key: b(key), clientId: 0n, seq: 0 } : { op: 'put', key: b(key), value: b(`w${++value}`), clientId: 0n, seq: 0 };
        const frame = encodeRequest(0, req);
        const ok = feed(encodeWrite(0, readFrameHeader(frame)!.type, frame.subarray(HEADER_BYTES)), false);
        const serves = phase[p] === 'served' || phase[p] === 'leaving';
        if (ok !== serves) fail(`a write to partition ${p} (${phase[p]}) was ${ok ? 'accepted' : 'refused'}`);
        if (ok) {
          if (req.op === 'put') expected[p]!.set(key, Buffer.from(req.value).toString());
          else expected[p]!.delete(key);
        }
        // The check after the entry ran before the model knew of the write: check again.
        check();
      },
    },
    // A write at the group that serves a partition elsewhere (until its source freezes it for us).
    {
      weight: 3,
      run: () => {
        const p = rng.int(P);
        if (!(phase[p] === 'elsewhere' || (phase[p] === 'arriving' && !stays[p]!.frozen)) || keysOf(p).length === 0) return;
        const key = rng.pick(keysOf(p));
        if (rng.int(4) === 0) remote[p]!.delete(key);
        else remote[p]!.set(key, `r${++value}`);
      },
    },
    // The placement group starts a move of a partition here, or away from here.
    {
      weight: 2,
      run: () => {
        const p = rng.int(P);
        if (moving(p)) return;
        if (config.owner[p] !== G) {
          nextConfig((c) => {
            c.moves.push({ partition: p, from: c.owner[p]!, to: G });
            c.owner[p] = G;
          });
        } else if (phase[p] === 'served') {
          const to = rng.pick(OTHERS);
          nextConfig((c) => {
            c.moves.push({ partition: p, from: G, to });
            c.owner[p] = to;
          });
        }
      },
    },
    // A move completes: one here once activated here, one away once frozen here (the destination
    // imported what we held).
    {
      weight: 2,
      run: () => {
        const m = rng.pick(config.moves.length > 0 ? config.moves : [undefined]);
        if (!m) return;
        if (m.to === G && phase[m.partition] !== 'served') return;
        if (m.from === G) {
          if (phase[m.partition] !== 'frozen') return;
          remote[m.partition] = new Map(expected[m.partition]!);
        }
        nextConfig((c) => {
          c.moves = c.moves.filter((x) => x.partition !== m.partition);
        });
      },
    },
    // Group 1's leader proposes a configuration: the newest, a skipped-ahead one, or a late old one.
    {
      weight: 3,
      run: () => applyConfig(rng.int(5) === 0 ? rng.pick(history) : config),
    },
    // The source's leader freezes a partition leaving here (through our log).
    {
      weight: 2,
      run: () => {
        const p = rng.int(P);
        if (phase[p] !== 'leaving' && rng.int(4) !== 0) return;
        if (phase[p] === 'leaving') phase[p] = 'frozen';
        feed(encodeOwnership({ type: 'freeze', partitions: [p] }));
      },
    },
    // Our leader works on an arriving partition's wave: purge, then the frozen copy in chunks,
    // then the activation; or abandons the wave (a new leader starts over).
    {
      weight: 8,
      run: () => {
        const p = rng.int(P);
        const stay = stays[p];
        if (phase[p] !== 'arriving' || !stay) return;
        if (!stay.attempt || rng.int(12) === 0) {
          stay.attempt = { purged: false, chunks: [] };
          return;
        }
        const a = stay.attempt;
        if (!a.purged) {
          const keys = [...contentOf(replicas[0]!, p).keys()].map(b);
          if (keys.length > 0) waveEntry(stay, (named) => encodePurge(keys, named));
          a.purged = true;
          stay.frozen ??= new Map(remote[p]); // the source freezes it: no more writes there
          const items = [...stay.frozen];
          for (let i = 0; i < items.length; ) {
            const n = 1 + rng.int(3);
            a.chunks.push(items.slice(i, i + n));
            i += n;
          }
          return;
        }
        const chunk = a.chunks.shift();
        if (chunk) {
          const body = encodeExportChunk(1, { items: chunk.map(([k, v]) => ({ key: b(k), value: b(v) })), sessions: [], next: null }).subarray(HEADER_BYTES);
          waveEntry(stay, (named) => encodeImport(body, named));
          return;
        }
        // Served from here on, with the source's frozen data: checked as soon as the entry applies.
        phase[p] = 'served';
        expected[p] = new Map(stay.frozen);
        waveEntry(stay, (named) => encodeOwnership(named === HandOffTarget.Any ? { type: 'activate', partitions: [p] } : { type: 'activate', partitions: [p], arrivedAt: named }));
        activations++;
        stale.push(...stay.entries);
        stays[p] = undefined;
      },
    },
    // A copy of the frozen data imported again (a resent chunk of the same stay): the same values.
    {
      weight: 1,
      run: () => {
        const p = rng.int(P);
        const stay = stays[p];
        if (phase[p] !== 'arriving' || !stay?.frozen || !stay.attempt?.purged || stay.frozen.size === 0) return;
        const items = [...stay.frozen].filter(() => rng.int(2) === 0);
        const body = encodeExportChunk(1, { items: items.map(([k, v]) => ({ key: b(k), value: b(v) })), sessions: [], next: null }).subarray(HEADER_BYTES);
        feed(encodeImport(body, stay.epoch));
      },
    },
    // A dropping partition: our leader purges its keys, then marks it dropped.
    {
      weight: 3,
      run: () => {
        const p = rng.int(P);
        if (phase[p] !== 'dropping') return;
        const entries = (dropEntries[p] ??= []);
        const keys = [...contentOf(replicas[0]!, p).keys()].map(b);
        if (keys.length > 0 && rng.int(3) !== 0) {
          const e = encodePurge(keys, HandOffTarget.Dropping);
          entries.push(e);
          feed(e);
          return;
        }
        if (keys.length > 0) return;
        // Not replayed later: a 'dropped' names no stay, and follows its purge with no wait between
        // in which a leader could be deposed and come back after another stay (docs/resharding.md).
        phase[p] = 'elsewhere';
        expected[p] = new Map();
        feed(encodeOwnership({ type: 'dropped', partitions: [p] }));
        stale.push(...entries);
        dropEntries[p] = undefined;
      },
    },
    // A stale leader's entry: any hand-off entry of a stay (or a drop) that is over, proposed again.
    {
      weight: 4,
      run: () => {
        if (stale.length > 0) feed(rng.pick(stale));
      },
    },
    // A replica installs a snapshot of the first one: it must equal its source, then and after.
    {
      weight: 1,
      run: () => {
        const src = replicas[0]!;
        const own = src.meta.get(OWNERSHIP_META);
        const r: Replica = { sm: new StateMachine(G, partitioner, undefined), data: new Map(src.data), meta: new Map(src.meta) };
        r.sm.restore(own ? decodeOwnership(own) : undefined, index);
        if (replicas.length >= MAX_REPLICAS) replicas.splice(1 + rng.int(replicas.length - 1), 1);
        replicas.push(r);
        // The restored one leads on from here now and then: its own ownership then drives the checks.
        if (rng.int(3) === 0) replicas.reverse();
        check();
      },
    },
  ];
  const total = actions.reduce((n, a) => n + a.weight, 0);

  applyConfig(config); // the group's first configuration: it serves what it owns
  for (step = 1; step <= steps; step++) {
    let x = rng.int(total);
    const action = actions.find((a) => (x -= a.weight) < 0)!;
    action.run();
  }
  return { entries: index, stale: staleSeen, activations };
}

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined ? fallback : Number(v);
}

describe('state machine: hand-off rules, randomized', () => {
  it('no hand-off entry overwrites a served write; restored replicas equal their source', async () => {
    const partitioner = await createPartitioner(P);
    const one = process.env.HANDOFF_FUZZ_SEED;
    const seeds = one !== undefined ? [Number(one)] : Array.from({ length: envInt('HANDOFF_FUZZ_SEEDS', 30) }, (_, i) => i + 1);
    const steps = envInt('HANDOFF_FUZZ_STEPS', 2500);
    let stale = 0;
    let activations = 0;
    for (const seed of seeds) {
      const r = runHandoffFuzz(seed, steps, partitioner);
      stale += r.stale;
      activations += r.activations;
    }
    // The runs reach what they are for: waves activated, and stale entries that found a later stay.
    assert.ok(activations > seeds.length, `activations: ${activations}`);
    if (seeds.length > 1) assert.ok(stale > 0, 'no stale entry met a later stay of its partition');
  });
});
