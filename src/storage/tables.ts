// Checked access to one generation of the state machine: every value is sealed on write and
// verified on read, so a damaged record raises StorageCorruptionError instead of being served.
import type { Database } from 'lmdb';
import { asBuffer } from './bytes.ts';
import type { Generation } from './env.ts';
import { StorageCorruptionError } from './errors.ts';
import { seal, unseal } from './sealed.ts';
import { decodeSession, encodeSession, type SessionRecord } from './session-codec.ts';

type Txn = NonNullable<Parameters<Database['get']>[1]>['transaction'];

export class Tables {
  constructor(
    readonly g: Generation,
    private readonly file: string,
  ) {}

  getKv(key: Uint8Array): Uint8Array | null {
    const k = asBuffer(key);
    const stored = this.g.kv.get(k);
    return stored === undefined ? null : this.open('kv', k, stored);
  }

  /** Writes return the commit promise of LMDB's batch (inside a transaction: already settled). */
  putKv(key: Uint8Array, value: Uint8Array): Promise<boolean> {
    const k = asBuffer(key);
    return this.g.kv.put(k, seal(k, value));
  }

  deleteKv(key: Uint8Array): Promise<boolean> {
    return this.g.kv.remove(asBuffer(key));
  }

  getSession(clientId: Uint8Array): SessionRecord | undefined {
    const k = asBuffer(clientId);
    const stored = this.g.sessions.get(k);
    if (stored === undefined) return undefined;
    const body = this.open('sessions', k, stored);
    try {
      return decodeSession(body);
    } catch (e) {
      throw this.corrupt('sessions', k, `undecodable session (${(e as Error).message})`);
    }
  }

  putSession(clientId: Uint8Array, s: SessionRecord): Promise<boolean> {
    return this.putSessionBody(clientId, encodeSession(s));
  }

  /** A session record already encoded (session-codec.ts). */
  putSessionBody(clientId: Uint8Array, body: Uint8Array): Promise<boolean> {
    const k = asBuffer(clientId);
    return this.g.sessions.put(k, seal(k, body));
  }

  deleteSession(clientId: Uint8Array): Promise<boolean> {
    return this.g.sessions.remove(asBuffer(clientId));
  }

  getMeta(name: string): Uint8Array | undefined {
    const k = Buffer.from(name, 'utf8');
    const stored = this.g.meta.get(k);
    return stored === undefined ? undefined : this.open('meta', k, stored);
  }

  putMeta(name: string, value: Uint8Array | null): Promise<boolean> {
    const k = Buffer.from(name, 'utf8');
    return value ? this.g.meta.put(k, seal(k, value)) : this.g.meta.remove(k);
  }

  /** Sealed values of a table in key order, verified; `transaction` pins a snapshot. */
  *range(
    table: 'kv' | 'sessions' | 'meta',
    opts: { start?: Uint8Array; end?: Uint8Array; limit?: number; transaction?: Txn },
  ): Generator<{ key: Buffer; stored: Uint8Array; body: Uint8Array }> {
    const range = this.g[table].getRange({
      ...(opts.start ? { start: asBuffer(opts.start) } : {}),
      ...(opts.end ? { end: asBuffer(opts.end) } : {}),
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
      ...(opts.transaction ? { transaction: opts.transaction } : {}),
    });
    for (const { key, value } of range) yield { key, stored: value, body: this.open(table, key, value) };
  }

  /** Keys of a table in key order, without reading their values. */
  *keys(table: 'kv' | 'sessions' | 'meta', opts: { start?: Uint8Array; limit?: number }): Generator<Buffer> {
    yield* this.g[table].getKeys({
      ...(opts.start ? { start: asBuffer(opts.start) } : {}),
      ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    }) as Iterable<Buffer>;
  }

  private open(table: string, key: Buffer, stored: Uint8Array): Uint8Array {
    const body = unseal(key, stored);
    if (!body) throw this.corrupt(table, key, 'value fails its checksum');
    return body;
  }

  private corrupt(table: string, key: Buffer, detail: string): StorageCorruptionError {
    const shown = key.length > 32 ? `${key.subarray(0, 32).toString('hex')}…` : key.toString('hex');
    return new StorageCorruptionError(this.file, undefined, `${table} record with key 0x${shown}: ${detail}`);
  }
}
