// The kustomize operations the operator uses on the group template (src/operator/kustomize.ts):
// field paths with bracketed keys and list selectors, replacements, JSON patches, and clear errors
// for paths that name nothing (a template edited into a shape the operator cannot fill).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyJsonPatch, applyReplacements, getField, parseFieldPath, setField, TemplateError } from '../../src/operator/kustomize.ts';

const pod = () => ({
  kind: 'StatefulSet',
  metadata: { name: 'GROUP', labels: { 'app.kubernetes.io/component': 'C', group: 'GROUP' } },
  spec: { template: { spec: { containers: [{ name: 'side', env: [] }, { name: 'kvs', env: [{ name: 'A', value: 'x' }, { name: 'B', value: 'y' }] }] } } },
});

test('field paths: dots inside brackets do not split; malformed paths are refused', () => {
  assert.deepEqual(parseFieldPath('metadata.labels.[app.kubernetes.io/component]'), ['metadata', 'labels', '[app.kubernetes.io/component]']);
  assert.deepEqual(parseFieldPath('a.[name=kvs].env.0'), ['a', '[name=kvs]', 'env', '0']);
  assert.throws(() => parseFieldPath('a..b'), TemplateError);
  assert.throws(() => parseFieldPath('a.[b'), TemplateError);
});

test('setField follows keys, [key], [field=value] and indexes, and refuses what is not there', () => {
  const o = pod();
  setField(o, 'metadata.labels.[app.kubernetes.io/component]', 'shard');
  setField(o, 'spec.template.spec.containers.[name=kvs].env.[name=B].value', 'z');
  setField(o, 'spec.template.spec.containers.1.env.0.value', 'w');
  assert.equal(o.metadata.labels['app.kubernetes.io/component'], 'shard');
  assert.deepEqual(o.spec.template.spec.containers[1]!.env, [{ name: 'A', value: 'w' }, { name: 'B', value: 'z' }]);
  assert.equal(getField(o, 'spec.template.spec.containers.[name=side].name'), 'side');
  assert.throws(() => setField(o, 'spec.template.spec.containers.[name=nope].env', []), /names nothing/);
  assert.throws(() => setField(o, 'metadata.annotations.x', 'v'), /names nothing/);
  assert.throws(() => setField(o, 'spec.template.spec.containers.5.name', 'v'), /names nothing/);
});

test('replacements copy the source value into every target of the selected kind', () => {
  const objs = [pod(), { kind: 'Service', metadata: { name: 'GROUP' } }];
  applyReplacements(objs, [{ source: { kind: 'ConfigMap', fieldPath: 'data.name' }, targets: [{ select: { kind: 'StatefulSet' }, fieldPaths: ['metadata.name', 'metadata.labels.group'] }, { select: { kind: 'Service' }, fieldPaths: ['metadata.name'] }] }], [{ kind: 'ConfigMap', data: { name: 'shard-3' } }]);
  assert.deepEqual(objs.map((o) => o.metadata.name), ['shard-3', 'shard-3']);
  assert.equal((objs[0] as ReturnType<typeof pod>).metadata.labels.group, 'shard-3');
  assert.throws(() => applyReplacements(objs, [{ source: { kind: 'ConfigMap', fieldPath: 'data.missing' }, targets: [] }], [{ kind: 'ConfigMap', data: {} }]), /has no value/);
});

test('JSON patches: add (append with -), replace, remove, with ~1 escapes; a missing path is an error', () => {
  const o = pod() as unknown as Record<string, unknown> & ReturnType<typeof pod>;
  applyJsonPatch(o, [
    { op: 'add', path: '/spec/template/spec/containers/1/env/-', value: { name: 'T', value: 'true' } },
    { op: 'replace', path: '/metadata/labels/app.kubernetes.io~1component', value: 'p' },
    { op: 'remove', path: '/spec/template/spec/containers/0' },
    { op: 'add', path: '/metadata/annotations', value: { a: '1' } },
  ]);
  assert.deepEqual(o.spec.template.spec.containers.map((c) => c.name), ['kvs']);
  assert.deepEqual(o.spec.template.spec.containers[0]!.env.at(-1), { name: 'T', value: 'true' });
  assert.equal(o.metadata.labels['app.kubernetes.io/component'], 'p');
  assert.throws(() => applyJsonPatch(o, [{ op: 'replace', path: '/spec/nope/x', value: 1 }]), /no such path/);
  assert.throws(() => applyJsonPatch(o, [{ op: 'remove', path: '/metadata/nope' }]), /no such field/);
  assert.throws(() => applyJsonPatch(o, [{ op: 'replace', path: '/spec/template/spec/containers/3', value: {} }]), /no such index/);
  assert.throws(() => applyJsonPatch(o, [{ op: 'add', path: 'relative', value: 1 }]), /does not start with/);
});
