// What one shard group holds of each partition, as recorded in its own Raft log. Pure transitions,
// applied in log order on every replica, so every replica of the group agrees on what it serves at
// every index. A partition moves:
//   source: serving → leaving (new epoch: still serving) → frozen (hand-off starts: no more
//           writes, data exported) → dropping (the move completed) → absent (data deleted)
//   destination: absent → arriving (new epoch) → serving (data imported and activated; the
//                source stays its peer until a configuration without the move is applied)
// A partition may arrive here more than once (moved away and back). The epoch at which its current
// stay began tells the stays apart: hand-off entries name it, and one proposed for an earlier stay
// (by a leader deposed mid-wave, back in office after the partition went round) changes nothing.
import type { ClusterConfig } from '../placement/config.ts';

export const PartState = { Absent: 0, Serving: 1, Leaving: 2, Frozen: 3, Dropping: 4, Arriving: 5 } as const;
export type PartState = (typeof PartState)[keyof typeof PartState];

export interface Ownership {
  /** The newest configuration epoch this group has applied. */
  epoch: number;
  state: PartState[];
  /** Leaving/frozen: the destination group; arriving: the source group. */
  peer: number[];
  /**
   * Arriving: the configuration epoch at which it started arriving (its current stay here). 0: not
   * known, an ownership stored by a version that did not record it (decodeOwnership). Kept as it was
   * in the other states, where nothing reads it.
   */
  arrivedAt: number[];
}

export type OwnershipChange =
  | { type: 'epoch'; group: number; config: ClusterConfig }
  | { type: 'freeze'; partitions: number[] }
  /** arrivedAt: the stay it is for (absent or 0 in entries of earlier versions: any stay). */
  | { type: 'activate'; partitions: number[]; arrivedAt?: number }
  | { type: 'dropped'; partitions: number[] };

export function emptyOwnership(partitions: number): Ownership {
  return {
    epoch: 0,
    state: new Array<PartState>(partitions).fill(PartState.Absent),
    peer: new Array<number>(partitions).fill(0),
    arrivedAt: new Array<number>(partitions).fill(0),
  };
}

/**
 * Whether a hand-off entry that names the stay `arrivedAt` is for the current stay of p, arriving
 * here. An entry naming none (0 or absent: written by an earlier version, or already in a log from
 * one) keeps the earlier rule, any stay: replicas that applied it before an upgrade and replicas
 * that replay it after must decide alike. So does an ownership that does not know p's stay (stored
 * by an earlier version): the entry is taken as for the current stay, as before.
 */
export function arrivingAt(o: Ownership, p: number, arrivedAt: number | undefined): boolean {
  if (o.state[p] !== PartState.Arriving) return false;
  const since = o.arrivedAt[p] ?? 0;
  return !arrivedAt || since === 0 || since === arrivedAt;
}

export function canServe(o: Ownership, p: number): boolean {
  const s = o.state[p];
  return s === PartState.Serving || s === PartState.Leaving;
}

export function applyOwnership(o: Ownership, change: OwnershipChange): Ownership {
  const state = [...o.state];
  const peer = [...o.peer];
  const arrivedAt = [...o.arrivedAt];
  switch (change.type) {
    case 'epoch': {
      const c = change.config;
      if (c.epoch <= o.epoch) return o; // an older configuration proposed late: nothing new in it
      const g = change.group;
      const moves = new Map(c.moves.map((m) => [m.partition, m]));
      for (let p = 0; p < c.partitions; p++) {
        const m = moves.get(p);
        const s = state[p];
        if (m?.from === g) {
          // At the group's first configuration nothing is Serving yet: the configuration this one
          // follows (the cluster's first, say) made this group the partition's owner, but the group
          // never applied it. Nobody else holds or has served the partition, so it hands it off as
          // if it had been serving it (with whatever it holds: nothing). Left Absent, the freeze
          // would be refused forever and the partition served by no group.
          if (s === PartState.Serving || (s === PartState.Absent && o.epoch === 0)) {
            state[p] = PartState.Leaving;
            peer[p] = m.to;
          }
        } else if (m?.to === g) {
          // Any copy we still hold (frozen or dropping, from an earlier move away from us whose
          // completion we skipped over) is stale: the importer clears it before importing.
          if (s !== PartState.Serving && s !== PartState.Arriving) {
            state[p] = PartState.Arriving;
            peer[p] = m.from;
            arrivedAt[p] = c.epoch; // a new stay: entries of any earlier one no longer apply
          }
        } else if (c.owner[p] === g) {
          // Owned with no hand-off: only at the group's first configuration (a new cluster).
          if (s === PartState.Absent && o.epoch === 0) state[p] = PartState.Serving;
          // A move here that completed.
          if (s === PartState.Serving) peer[p] = 0;
        } else if (s === PartState.Leaving || s === PartState.Frozen) {
          // The move is no longer listed: the destination serves it. Our copy can go.
          state[p] = PartState.Dropping;
        }
      }
      return { epoch: c.epoch, state, peer, arrivedAt };
    }
    case 'freeze':
      for (const p of change.partitions) if (state[p] === PartState.Leaving) state[p] = PartState.Frozen;
      return { ...o, state };
    case 'activate':
      for (const p of change.partitions) {
        // peer keeps the source until a configuration without the move is applied here: until
        // then the move is not complete, and scans and counts wait (handingOver).
        if (arrivingAt(o, p, change.arrivedAt)) state[p] = PartState.Serving;
      }
      return { ...o, state, peer };
    case 'dropped':
      for (const p of change.partitions) {
        if (state[p] === PartState.Dropping) {
          state[p] = PartState.Absent;
          peer[p] = 0;
        }
      }
      return { ...o, state, peer };
  }
}

export function partitionsIn(o: Ownership, s: PartState): number[] {
  const out: number[] = [];
  o.state.forEach((x, p) => {
    if (x === s) out.push(p);
  });
  return out;
}

export function encodeOwnership(o: Ownership): Uint8Array {
  return Buffer.from(JSON.stringify(o), 'utf8');
}

export function decodeOwnership(b: Uint8Array): Ownership {
  const o = JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8')) as Omit<Ownership, 'arrivedAt'> & { arrivedAt?: number[] };
  // Stored by an earlier version: no stay known (arrivingAt then accepts any, as that version did).
  return { ...o, arrivedAt: o.arrivedAt ?? new Array<number>(o.state.length).fill(0) };
}

/**
 * Whether partitions are changing hands here: frozen at this source, or activated at this
 * destination while the move is not complete yet. From the freeze until the activation no group
 * serves them, and around the activation two groups' answers may both hold them.
 */
export function handingOver(o: Ownership): boolean {
  return o.state.some((s, p) => s === PartState.Frozen || (s === PartState.Serving && o.peer[p] !== 0));
}
