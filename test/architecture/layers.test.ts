// The layers of src/ (test/architecture/layers.js, docs/architecture.md) hold for every import,
// the listed debts still exist (a ratchet: fixing one forces deleting it from the list), and the
// pure cores reach no I/O through any chain of imports.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { cycles, folderEdges, importsOf, readImports, repoRoot, srcRoot, type Import } from './import-graph.ts';
import { exceptions, folderOf, layerViolation, layers, pureFolders, pureModules, targetFolder } from './layers.js';

const imports = readImports();

/** Imports that go against the layers, counting no exception as allowed. */
function againstLayers(all: Import[]): Import[] {
  return all.filter((i) => layerViolation(i.file, i.specifier, []) !== undefined);
}

/** Every non-relative module reached from the files of `folder` through relative imports. */
function modulesReachedFrom(folder: string, all: Import[]): Map<string, string> {
  const byFile = new Map<string, Import[]>();
  for (const i of all) byFile.set(i.file, [...(byFile.get(i.file) ?? []), i]);
  const seen = new Set<string>();
  const reached = new Map<string, string>(); // module -> file importing it
  const queue = [...byFile.keys()].filter((f) => folderOf(f) === folder);
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const i of byFile.get(file) ?? []) {
      if (i.toFolder === undefined) reached.set(i.specifier, file);
      else queue.push(join(file, '..', i.specifier).split('\\').join('/'));
    }
  }
  return reached;
}

describe('layers of src/', () => {
  it('reads the real graph (the helper sees imports)', () => {
    assert.ok(imports.length > 100, `only ${imports.length} imports read from src/`);
    const edges = folderEdges(imports);
    assert.ok(edges.get('server')?.has('replica'), 'server -> replica edge missing');
  });

  it('every folder of src/ is in exactly one layer', () => {
    const placed = layers.flatMap((l) => l.folders);
    assert.equal(new Set(placed).size, placed.length, 'a folder is in two layers');
    const folders = new Set(imports.map((i) => folderOf(i.file)));
    for (const folder of folders) assert.ok(placed.includes(folder), `src/${folder} is in no layer`);
  });

  it('no import goes against the layers except the listed exceptions', () => {
    const violations = imports
      .map((i) => ({ i, why: layerViolation(i.file, i.specifier) }))
      .filter((v) => v.why !== undefined)
      .map((v) => `src/${v.i.file}: '${v.i.specifier}': ${v.why}`);
    assert.deepEqual(violations, []);
  });

  it('every listed exception still exists (fixing one means deleting it from layers.js)', () => {
    const debts = againstLayers(imports);
    for (const e of exceptions) {
      assert.ok(
        debts.some((d) => d.file === e.file && d.toFolder === e.to),
        `src/${e.file} no longer imports ${e.to}/ against the layers: remove it from exceptions in test/architecture/layers.js and docs/architecture.md`,
      );
    }
  });

  it('the only folder cycles left are made of listed exceptions', () => {
    const withoutDebts = imports.filter((i) => !exceptions.some((e) => e.file === i.file && e.to === i.toFolder));
    assert.deepEqual(cycles(folderEdges(withoutDebts)), []);
  });

  it('raft/, partition/, wire/ and placement/ reach no I/O through any chain of imports', () => {
    for (const folder of pureFolders) {
      const reached = modulesReachedFrom(folder, imports);
      assert.ok([...imports].some((i) => folderOf(i.file) === folder), `read no file of src/${folder}`);
      for (const [module, file] of reached) {
        assert.ok(pureModules.includes(module), `src/${folder}/ reaches '${module}' (imported by src/${file})`);
      }
    }
  });
});

describe('the layer check can fail', () => {
  it('flags imports upward, sideways, into unplaced folders, and out of src/', () => {
    assert.match(layerViolation('raft/log.ts', '../server/server.ts')!, /raft\/ .* may not import server\//);
    assert.match(layerViolation('wire/frame.ts', '../storage/book.ts')!, /same layer/);
    assert.match(layerViolation('router/router.ts', '../client/client.ts')!, /same layer/);
    assert.match(layerViolation('raft/log.ts', '../newthing/x.ts')!, /newthing\/ is in no layer/);
    assert.throws(() => targetFolder('raft/log.ts', '../../test/x.ts'), /leaves src\//);
    assert.equal(layerViolation('server/server.ts', '../raft/log.ts'), undefined);
    assert.equal(layerViolation('raft/log.ts', './types.ts'), undefined);
    assert.equal(layerViolation('raft/log.ts', 'node:fs'), undefined, 'packages are the purity check\'s job');
    assert.equal(targetFolder('cli/main.ts', '../version.ts'), 'version', 'a top-level file is its own folder');
  });

  it('a listed exception is allowed only for its own file', () => {
    // The list is empty today: check the rule with an exception of its own.
    const e = exceptions[0] ?? { file: 'replica/commands.ts', to: 'resharding', why: 'a test exception' };
    const allowed = [e];
    assert.notEqual(layerViolation(e.file, `../${e.to}/x.ts`, []), undefined);
    assert.equal(layerViolation(e.file, `../${e.to}/x.ts`, allowed), undefined);
    const sibling = `${folderOf(e.file)}/not-listed.ts`;
    assert.notEqual(layerViolation(sibling, `../${e.to}/x.ts`, allowed), undefined);
  });

  it('reads dynamic imports, export-from and import type', () => {
    const text = [
      "import type { A } from '../server/a.ts';",
      "export { b } from '../cli/b.ts';",
      "const c = await import('../doors/c.ts');",
      "type D = import('../router/d.ts').D;",
    ].join('\n');
    assert.deepEqual(importsOf('raft/x.ts', text).map((i) => i.toFolder), ['server', 'cli', 'doors', 'router']);
  });

  it('finds a purity breach through an intermediate file', () => {
    const fake = [
      ...importsOf('raft/a.ts', "import { b } from '../log/b.ts';"),
      ...importsOf('log/b.ts', "import { writeFileSync } from 'node:fs';"),
    ];
    assert.deepEqual([...modulesReachedFrom('raft', fake)], [['node:fs', 'log/b.ts']]);
  });

  it('eslint reports a bad import in src/ through the layers rule', async () => {
    const eslint = new ESLint({ cwd: repoRoot });
    const text = [
      "import { startServer } from '../server/server.ts';",
      "export { parseArgs } from '../cli/args.ts';",
      "export const load = () => import('../doors/resp-door.ts');",
      "export type R = import('../router/router.ts').Router;",
      "import { RaftLog } from './log.ts';",
      "export const x = [startServer, RaftLog];",
    ].join('\n');
    const [result] = await eslint.lintText(text, { filePath: join(srcRoot, 'raft', 'bad-import.ts') });
    const messages = result!.messages.filter((m) => m.ruleId === 'kvs/layers');
    assert.deepEqual(
      messages.map((m) => [m.line, /may not import (\w+)\//.exec(m.message)?.[1]]),
      [[1, 'server'], [2, 'cli'], [3, 'doors'], [4, 'router']],
      JSON.stringify(result!.messages),
    );
  });
});
