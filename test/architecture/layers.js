// The layers of src/, top to bottom, and the one check both the eslint rule (eslint.config.js)
// and test/architecture/layers.test.ts apply. Plain JavaScript so eslint.config.js can load it
// without a TypeScript loader; types in layers.d.ts. docs/architecture.md explains each layer.
//
// A file may import its own folder and any folder of a LOWER layer, nothing on its own layer or
// above, except the named debts in `exceptions` (layers.test.ts fails when one no longer exists,
// so the list only shrinks).

import { dirname, posix } from 'node:path';

export const layers = [
  { name: 'command line', folders: ['cli'] },
  { name: 'processes', folders: ['server', 'operator'] },
  { name: 'doors', folders: ['doors'] },
  { name: 'membership', folders: ['membership'] },
  { name: 'resharding', folders: ['resharding'] },
  // The client library sits beside the server's routing: neither imports the other.
  { name: 'routing and client', folders: ['router', 'client'] },
  { name: 'replica', folders: ['replica'] },
  { name: 'tracing', folders: ['trace'] },
  // Calling a group (and the client connection it uses) over the links below it.
  { name: 'cluster access', folders: ['cluster'] },
  { name: 'links', folders: ['transport'] },
  { name: 'formats and stores', folders: ['storage', 'wire', 'placement'] },
  { name: 'cores and leaves', folders: ['raft', 'partition', 'log', 'version', 'timers', 'address'] },
];

/** Imports that go against the layers today: file (relative to src/), the folder it imports, why. */
// Empty since issue 16's structure work; a new one needs a reason and a way out in docs/architecture.md.
export const exceptions = [];

/** Folders whose code, followed through every import, must reach no I/O. */
export const pureFolders = ['raft', 'partition', 'wire', 'placement'];
/** Packages and builtins a pure folder may still use: they compute, they do no I/O. */
export const pureModules = ['xxhash-wasm'];

const layerOfFolder = new Map(layers.flatMap((layer, rank) => layer.folders.map((f) => [f, rank])));

/** The src/ folder of a src-relative, '/'-separated path; a top-level file is its own folder. */
export function folderOf(srcRelative) {
  const [first, ...rest] = srcRelative.split('/');
  return rest.length > 0 ? first : first.replace(/\.[cm]?ts$/, '');
}

/**
 * The src/ folder a relative import lands in, or undefined for a package or builtin.
 * Throws for a path that climbs out of src/.
 */
export function targetFolder(file, specifier) {
  if (!specifier.startsWith('.')) return undefined;
  const target = posix.normalize(posix.join(dirname(file), specifier));
  if (target.startsWith('..')) throw new Error(`${file}: import '${specifier}' leaves src/`);
  return folderOf(target);
}

/**
 * Why importing `specifier` from `file` (relative to src/) goes against the layers, or undefined
 * when it is allowed. The `allowed` exceptions (by default the listed ones) count as allowed.
 */
export function layerViolation(file, specifier, allowed = exceptions) {
  const to = targetFolder(file, specifier);
  const from = folderOf(file);
  if (to === undefined || to === from) return undefined;
  const fromRank = layerOfFolder.get(from);
  const toRank = layerOfFolder.get(to);
  if (fromRank === undefined) return `src/${from}/ is in no layer: add it to test/architecture/layers.js`;
  if (toRank === undefined) return `src/${to}/ is in no layer: add it to test/architecture/layers.js`;
  // Layers are listed top first: a lower layer has a higher index.
  if (toRank > fromRank) return undefined;
  if (allowed.some((e) => e.file === file && e.to === to)) return undefined;
  const where = toRank === fromRank ? 'on the same layer as' : 'above';
  return `${from}/ (${layers[fromRank].name}) may not import ${to}/, which is ${where} it (${layers[toRank].name})`;
}

/** An eslint rule applying layerViolation to every import of a file under `srcRoot`. */
export function layerRule(srcRoot) {
  return {
    meta: { type: 'problem', schema: [], docs: { description: 'imports follow the layers of src/' } },
    create(context) {
      const path = posix.normalize(context.filename.split('\\').join('/'));
      const root = srcRoot.split('\\').join('/').replace(/\/$/, '') + '/';
      if (!path.startsWith(root)) return {};
      const file = path.slice(root.length);
      const check = (source) => {
        if (typeof source?.value !== 'string') return;
        const message = layerViolation(file, source.value);
        if (message !== undefined) context.report({ node: source, message });
      };
      return {
        ImportDeclaration: (node) => check(node.source),
        ExportNamedDeclaration: (node) => check(node.source),
        ExportAllDeclaration: (node) => check(node.source),
        ImportExpression: (node) => check(node.source),
        // `import('../x.ts').T` in a type: the path is a literal type's literal.
        TSImportType: (node) => check(node.argument?.literal),
      };
    },
  };
}
