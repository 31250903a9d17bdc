// Which HTTP implementation the door runs on: uWS where its addon loads, node:http + ws otherwise
// or when KVS_HTTP_IMPL=node; a bad KVS_HTTP_IMPL is an error, never a silent choice.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { httpImpl, loadUws } from '../../src/doors/http-util.ts';

describe('HTTP implementation choice', () => {
  const loaded = loadUws();

  it('default: uWS where the addon loads, else the fallback with the reason', async () => {
    const r = await httpImpl({});
    if ('uws' in loaded) {
      assert.equal(r.impl, 'uws');
      assert.equal(r.fallback, undefined);
      assert.equal(typeof (r.uws.App() as unknown as { close?: unknown }).close, 'function', 'the real addon, not the package stand-in without close()');
    } else {
      assert.equal(r.impl, 'node');
      assert.match(r.fallback!, /no uWebSockets\.js binary/);
    }
  });

  it('KVS_HTTP_IMPL=node forces the fallback; =uws refuses it; anything else is an error', async () => {
    const node = await httpImpl({ KVS_HTTP_IMPL: 'node' });
    assert.deepEqual([node.impl, node.fallback], ['node', 'KVS_HTTP_IMPL=node']);
    assert.equal(typeof (node.uws.App() as unknown as { close?: unknown }).close, 'function');
    if ('uws' in loaded) assert.equal((await httpImpl({ KVS_HTTP_IMPL: 'uws' })).impl, 'uws');
    else await assert.rejects(httpImpl({ KVS_HTTP_IMPL: 'uws' }), /KVS_HTTP_IMPL=uws: no uWebSockets\.js binary/);
    await assert.rejects(httpImpl({ KVS_HTTP_IMPL: 'fast' }), /KVS_HTTP_IMPL must be uws or node, got "fast"/);
  });
});
