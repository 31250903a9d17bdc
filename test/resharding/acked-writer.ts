// A stream of writes to unique keys that remembers which were acknowledged, and the check that
// every one of them is still readable with its value: "no acknowledged write is lost". With
// deleteEvery n, every n-th key is deleted again once written: an acknowledged delete must stay
// deleted (a hand-off that copied the key before the delete must not bring it back).
import assert from 'node:assert/strict';
import type { KvsClient } from '../../src/client/client.ts';

const dec = new TextDecoder();

export class AckedWriter {
  /** Key → value, or null for an acknowledged delete. */
  readonly acked = new Map<string, string | null>();
  private running = true;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: KvsClient,
    private readonly prefix = 'w',
    private readonly deleteEvery = 0,
  ) {}

  start(): void {
    this.loop = (async () => {
      for (let i = 0; this.running; i++) {
        const key = `${this.prefix}-${i}`;
        try {
          await this.client.put(key, `value-${i}`);
          this.acked.set(key, `value-${i}`);
          if (this.deleteEvery > 0 && i % this.deleteEvery === 0) {
            this.acked.delete(key); // unknown until the delete is answered
            await this.client.delete(key);
            this.acked.set(key, null);
          }
        } catch {
          // unknown outcome: not counted as acknowledged
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

export async function assertAllReadable(client: KvsClient, acked: Map<string, string | null>): Promise<void> {
  assert.ok(acked.size > 50, `only ${acked.size} writes were acknowledged`);
  for (const [key, value] of acked) {
    const got = await client.get(key);
    assert.equal(got === null ? null : dec.decode(got), value, value === null ? `acknowledged delete of ${key} undone` : `acknowledged write ${key} lost`);
  }
}
