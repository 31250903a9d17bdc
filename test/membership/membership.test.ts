// The pure parts of membership changes: which links a replica keeps, the address book, editing a
// group's replica list in the cluster configuration, the MEMBERSHIP frame, and Peers following a
// changing set.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addedReplica, shardedLayout } from '../../src/cli/layout.ts';
import { AddressBook } from '../../src/membership/address-book.ts';
import { wantedPeers } from '../../src/membership/peer-set.ts';
import { memberAddresses } from '../../src/server/pod-identity.ts';
import { withReplica, withoutReplica, type ClusterConfig } from '../../src/placement/config.ts';
import { MsgType, type Message } from '../../src/raft/types.ts';
import { Peers } from '../../src/transport/peers.ts';
import { BadRequestError, FrameDecoder } from '../../src/wire/index.ts';
import { decodeMembership, encodeMembership } from '../../src/wire/membership-codec.ts';

const book = [
  { id: 1, address: 'h:1' },
  { id: 2, address: 'h:2' },
  { id: 3, address: 'h:3' },
  { id: 4, address: 'h:4' },
];

describe('wantedPeers', () => {
  it('links to the voters and learners of the configuration, not to itself', () => {
    assert.deepEqual(wantedPeers(1, { voters: [1, 2], learners: [3] }, book), {
      peers: [
        { id: 2, address: 'h:2' },
        { id: 3, address: 'h:3' },
      ],
      missing: [],
    });
  });

  it('drops a removed member and reports members without an address', () => {
    assert.deepEqual(wantedPeers(2, { voters: [2, 3, 9], learners: [] }, book), { peers: [{ id: 3, address: 'h:3' }], missing: [9] });
  });

  it('a replica outside its own configuration (joining or removed) links to every replica it knows', () => {
    assert.deepEqual(wantedPeers(4, { voters: [], learners: [] }, book).peers.map((p) => p.id), [1, 2, 3]);
    assert.deepEqual(wantedPeers(4, { voters: [1, 2, 3], learners: [] }, book).peers.map((p) => p.id), [1, 2, 3]);
  });
});

describe('AddressBook', () => {
  it('a later source wins for an id, entries are never forgotten, and version counts changes', () => {
    const b = new AddressBook([{ id: 1, address: 'a:1' }]);
    const v0 = b.version;
    b.set(1, 'a:1');
    assert.equal(b.version, v0, 'same address: no change');
    b.setAll([{ id: 1, address: 'b:1' }, { id: 2, address: 'b:2' }]);
    assert.equal(b.version, v0 + 2);
    assert.equal(b.addressOf(1), 'b:1');
    assert.equal(b.addressOf(7), '');
    assert.deepEqual(b.entries().map((e) => e.id), [1, 2]);
  });

  it('on Kubernetes a member id stands for its pod\'s DNS name, below every other source', () => {
    // A restarted pod past the founders lists only itself; its log names members 101..103.
    const b = new AddressBook([{ id: 102, address: 'self:7000' }], memberAddresses('kv-shard-1-1', 1, 'ns.svc.cluster.local', '0.0.0.0:7000'));
    assert.equal(b.addressOf(103), 'kv-shard-1-2.kv-shard-1.ns.svc.cluster.local:7000');
    assert.equal(b.addressOf(102), 'self:7000');
    assert.equal(b.addressOf(201), '', 'another group\'s id stands for nothing');
    assert.deepEqual(b.entries(), [{ id: 102, address: 'self:7000' }], 'derived addresses only for the members asked about');
    const links = wantedPeers(102, { voters: [101, 102, 103], learners: [] }, b.entries([101, 102, 103]));
    assert.deepEqual(links, { peers: [101, 103].map((id) => ({ id, address: `kv-shard-1-${id - 101}.kv-shard-1.ns.svc.cluster.local:7000` })), missing: [] });
    // The placement configuration's address wins once known.
    b.set(103, 'other:7000');
    assert.equal(b.entries([103]).find((e) => e.id === 103)!.address, 'other:7000');
    // The placement group: ids from 1.
    assert.equal(memberAddresses('placement-0', 0, 's', '0.0.0.0:7000')(3), 'placement-2.placement.s:7000');
  });
});

describe('editing a group in the cluster configuration', () => {
  const config: ClusterConfig = {
    epoch: 5,
    partitions: 4,
    loadFactor: 1.25,
    groups: [
      { id: 1, replicas: [{ id: 101, address: 'h:1' }] },
      { id: 2, replicas: [{ id: 201, address: 'h:2' }] },
    ],
    owner: [1, 2, 1, 2],
    moves: [],
  };

  it('adds a replica at the end of its group and bumps the epoch; the same add again changes nothing', () => {
    const c = withReplica(config, 1, { id: 102, address: 'h:3' });
    assert.equal(c.epoch, 6);
    assert.deepEqual(c.groups[0]!.replicas, [
      { id: 101, address: 'h:1' },
      { id: 102, address: 'h:3' },
    ]);
    assert.deepEqual(c.groups[1], config.groups[1]);
    assert.equal(withReplica(c, 1, { id: 102, address: 'h:3' }), c);
    assert.deepEqual(withReplica(c, 1, { id: 102, address: 'h:9' }).groups[0]!.replicas[1], { id: 102, address: 'h:9' }, 'a moved replica');
    assert.equal(config.groups[0]!.replicas.length, 1, 'the input is not modified');
  });

  it('removes a replica; absent: unchanged; never the last one; unknown group: an error', () => {
    const c = withReplica(config, 1, { id: 102, address: 'h:3' });
    const r = withoutReplica(c, 1, 101);
    assert.equal(r.epoch, 7);
    assert.deepEqual(r.groups[0]!.replicas, [{ id: 102, address: 'h:3' }]);
    assert.equal(withoutReplica(r, 1, 101), r);
    assert.throws(() => withoutReplica(r, 1, 102), /last one/);
    assert.throws(() => withReplica(config, 9, { id: 1, address: 'h:1' }), /not in the configuration/);
  });
});

describe('MEMBERSHIP frame', () => {
  const frame = (b: Buffer): Uint8Array => {
    const d = new FrameDecoder();
    d.push(b);
    return d.read()!.body;
  };

  it('round-trips add and remove', () => {
    for (const c of [
      { op: 'add' as const, group: 3, replicaId: 7, address: '[::1]:7001' },
      { op: 'remove' as const, group: 0, replicaId: 0xffff_ffff, address: '' },
    ]) {
      assert.deepEqual(decodeMembership(frame(encodeMembership(1, c))), c);
    }
  });

  it('rejects an unknown op, replica 0, an add without address, trailing bytes', () => {
    const body = frame(encodeMembership(1, { op: 'add', group: 1, replicaId: 2, address: 'h:1' }));
    assert.throws(() => decodeMembership(Uint8Array.from([3, ...body.subarray(1)])), BadRequestError);
    assert.throws(() => decodeMembership(frame(encodeMembership(1, { op: 'remove', group: 1, replicaId: 0, address: '' }))), BadRequestError);
    assert.throws(() => decodeMembership(frame(encodeMembership(1, { op: 'add', group: 1, replicaId: 2, address: '' }))), BadRequestError);
    assert.throws(() => decodeMembership(Uint8Array.from([...body, 0])), BadRequestError);
  });
});

describe('Peers.setPeers', () => {
  it('adds, keeps and closes links to follow the set; a message to a replica without a link is dropped', () => {
    // Port 1 on loopback: nothing listens, the links just keep retrying until closed.
    const peers = new Peers({ version: 1, replicaId: 1, groupId: 1 }, [{ id: 2, address: '127.0.0.1:1' }]);
    try {
      assert.deepEqual(peers.ids(), [2]);
      peers.setPeers([
        { id: 2, address: '127.0.0.1:1' },
        { id: 3, address: '127.0.0.1:1' },
      ]);
      assert.deepEqual(peers.ids(), [2, 3]);
      peers.setPeers([{ id: 3, address: '127.0.0.1:1' }]);
      assert.deepEqual(peers.ids(), [3]);
      const heartbeat: Message = { type: MsgType.Heartbeat, from: 1, to: 9, term: 1, commit: 0, round: 1 };
      assert.doesNotThrow(() => peers.send([heartbeat]));
    } finally {
      peers.close();
    }
  });
});

describe('kvs up: where an added replica goes', () => {
  it('takes the first free port slot and a new id whose data directory does not exist', () => {
    const layout = shardedLayout('/d', 7001, 2, 3); // placement 1..3, group 1: 101..103, group 2: 201..203
    const withoutOne = layout.filter((r) => r.id !== 102); // 102 removed: its slot (native 7005) is free
    const r = addedReplica('/d', withoutOne, 1, (dir) => dir === '/d/g1-r104');
    assert.equal(r.endpoints.native, '127.0.0.1:7005');
    assert.equal(r.id, 105, '104 is skipped: a directory with that name exists');
    assert.equal(r.join, true);
    assert.equal(r.dataDir, '/d/g1-r105');
    assert.equal(addedReplica('/d', layout, 2, () => false).endpoints.native, '127.0.0.1:7010');
  });
});
