// The replicated state machine: a string map with per-client sessions, its applied index, and a
// running hash of everything applied (the "chain"), which lets the checker compare replicas at any
// index in O(1), including ones that arrived there by installing a snapshot.
import { EntryType, type Entry } from '../../src/raft/types.ts';
import { decodeCommand } from './command.ts';

export type ApplyOutcome =
  | { kind: 'noop' | 'conf' }
  | { kind: 'probe'; n: number }
  | { kind: 'op'; clientId: number; seq: number; result: string | null | boolean | undefined; duplicate: boolean };

interface Image {
  index: number;
  chain: number;
  data: [string, string][];
  sessions: [number, number][];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class Kv {
  data = new Map<string, string>();
  /** clientId -> highest seq applied: a command seen twice is applied once. */
  sessions = new Map<number, number>();
  applied = 0;
  chain = 0;

  apply(e: Entry): ApplyOutcome {
    this.applied = e.index;
    this.chain = chainStep(this.chain, e);
    if (e.type === EntryType.Conf) return { kind: 'conf' };
    const cmd = decodeCommand(e.data);
    if (cmd === null) return { kind: 'noop' };
    if ('probe' in cmd) return { kind: 'probe', n: cmd.probe };
    const last = this.sessions.get(cmd.c) ?? 0;
    if (cmd.s <= last) return { kind: 'op', clientId: cmd.c, seq: cmd.s, result: undefined, duplicate: true };
    this.sessions.set(cmd.c, cmd.s);
    let result: string | null | boolean | undefined;
    const cur = this.data.get(cmd.k) ?? null;
    switch (cmd.op) {
      case 'put':
        this.data.set(cmd.k, cmd.v ?? '');
        break;
      case 'delete':
        this.data.delete(cmd.k);
        break;
      case 'get':
        result = cur;
        break;
      case 'cas':
        result = cur === (cmd.e ?? null);
        if (result) this.data.set(cmd.k, cmd.v ?? '');
        break;
    }
    return { kind: 'op', clientId: cmd.c, seq: cmd.s, result, duplicate: false };
  }

  image(): Uint8Array {
    const img: Image = { index: this.applied, chain: this.chain, data: [...this.data], sessions: [...this.sessions] };
    return enc.encode(JSON.stringify(img));
  }

  static fromImage(bytes: Uint8Array): Kv {
    const img = JSON.parse(dec.decode(bytes)) as Image;
    const kv = new Kv();
    kv.data = new Map(img.data);
    kv.sessions = new Map(img.sessions);
    kv.applied = img.index;
    kv.chain = img.chain;
    return kv;
  }
}

/** FNV-1a over an entry's identity and bytes, folded into the previous chain value. */
export function chainStep(chain: number, e: Entry): number {
  let h = Math.imul(chain ^ 0x811c9dc5, 0x01000193);
  h = Math.imul(h ^ e.index, 0x01000193);
  h = Math.imul(h ^ e.term, 0x01000193);
  return Math.imul(h ^ entryHash(e), 0x01000193) >>> 0;
}

export function entryHash(e: Entry): number {
  let h = Math.imul(0x811c9dc5 ^ e.type, 0x01000193);
  for (let i = 0; i < e.data.length; i++) h = Math.imul(h ^ (e.data[i] as number), 0x01000193);
  return h >>> 0;
}
