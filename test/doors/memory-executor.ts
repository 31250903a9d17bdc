// An in-memory stand-in for the router: the same Request → Response contract, a sorted map behind
// it. Lets door tests and fuzzers run in-process, fast, without a Raft group.
import type { DoorContext, Executor, NodeStatus } from '../../src/doors/door-context.ts';
import type { RawRequest } from '../../src/router/router.ts';
import type { KeyValue, Request, Response } from '../../src/wire/index.ts';
import { silentLogger } from '../../src/log/logger.ts';

const id = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

export class MemoryExecutor implements Executor {
  readonly data = new Map<string, Buffer>();
  readonly seen: Request[] = [];
  /** Answer this error instead of running the next requests (tests of error mapping). */
  failWith: Response | null = null;
  /** Answer after this long (0: after a microtask), so requests overlap as they do on a real group. */
  delayMs = 0;

  async execute(req: Request, _raw: RawRequest): Promise<Response> {
    this.seen.push(req);
    await (this.delayMs > 0 ? new Promise((r) => setTimeout(r, this.delayMs)) : Promise.resolve());
    if (this.failWith) return this.failWith;
    switch (req.op) {
      case 'ping':
        return { kind: 'ok' };
      case 'status':
        return { kind: 'status', info: { replicaId: 1, groupId: 0, role: 'leader', term: 1, leaderId: 1, leaderAddr: '127.0.0.1:1', commitIndex: 1, appliedIndex: 1, epoch: 0 } };
      case 'get':
        return { kind: 'value', value: this.data.get(id(req.key)) ?? null };
      case 'count':
        return { kind: 'count', count: this.data.size };
      case 'put':
        this.data.set(id(req.key), Buffer.from(req.value));
        return { kind: 'ok' };
      case 'delete':
        this.data.delete(id(req.key));
        return { kind: 'ok' };
      case 'cas': {
        const cur = this.data.get(id(req.key)) ?? null;
        const match = cur === null ? req.expected === null : req.expected !== null && cur.equals(req.expected);
        if (!match) return { kind: 'cas', ok: false, current: cur };
        if (req.value === null) this.data.delete(id(req.key));
        else this.data.set(id(req.key), Buffer.from(req.value));
        return { kind: 'cas', ok: true, current: req.value };
      }
      case 'batch':
        for (const o of req.ops) {
          if (o.op === 'put') this.data.set(id(o.key), Buffer.from(o.value));
          else this.data.delete(id(o.key));
        }
        return { kind: 'ok' };
      case 'scan': {
        const start = id(req.start);
        const end = req.end === null ? null : id(req.end);
        const keys = [...this.data.keys()].filter((k) => k >= start && (end === null || k < end)).sort();
        const limit = req.limit === 0 ? 1000 : req.limit;
        const items: KeyValue[] = keys.slice(0, limit).map((k) => ({ key: bytes(k), value: this.data.get(k)! }));
        return { kind: 'scan', items, more: keys.length > limit ? bytes(keys[limit]!) : null };
      }
    }
  }
}

export function fakeStatus(overrides: Partial<NodeStatus> = {}): NodeStatus {
  return {
    replicaId: 1,
    groupId: 0,
    role: 'leader',
    term: 3,
    leaderId: 1,
    leaderAddr: '127.0.0.1:7001',
    commitIndex: 10,
    appliedIndex: 10,
    firstIndex: 1,
    lastIndex: 10,
    epoch: 0,
    blank: false,
    peers: [
      { id: 2, address: '127.0.0.1:7002', match: 10, next: 11, state: 'replicate', connected: true },
      { id: 3, address: '127.0.0.1:7003', match: 9, next: 10, state: 'replicate', connected: true },
    ],
    uptimeSeconds: 5,
    endpoints: { native: '127.0.0.1:7001' },
    ...overrides,
  };
}

export interface FakeContext extends DoorContext {
  observed: { door: string; op: string; outcome: string }[];
  readiness: { ready: boolean; reason: string };
}

export function fakeContext(executor: Executor = new MemoryExecutor(), limits = { maxKeyBytes: 4026, maxValueBytes: 1 << 20 }): FakeContext {
  const ctx: FakeContext = {
    executor,
    limits,
    observed: [],
    readiness: { ready: true, reason: 'caught up' },
    status: () => fakeStatus(),
    keyCount: () => (executor instanceof MemoryExecutor ? executor.data.size : 0),
    ready: async () => ctx.readiness,
    metricsText: () => '# HELP kvs_up Always 1.\n# TYPE kvs_up gauge\nkvs_up 1\n',
    observe: (door, op, _s, outcome) => void ctx.observed.push({ door, op, outcome }),
    connectionOpened: () => {},
    connectionClosed: () => {},
    log: silentLogger,
  };
  return ctx;
}
