// The import graph of src/, folder to folder, read with the TypeScript parser (static imports,
// `export ... from`, `import type` and `import('...')` alike). Used by layers.test.ts and runnable
// alone to print every edge and cycle:
//   node --import tsx test/architecture/import-graph.ts
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { folderOf, targetFolder } from './layers.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const srcRoot = join(repoRoot, 'src');

/** One import statement: `file` (relative to src/, '/'-separated) imports `specifier`. */
export interface Import {
  file: string;
  specifier: string;
  /** src/ folder the import lands in, or undefined for a package or node: builtin. */
  toFolder: string | undefined;
}

/** Every import specifier of one source text, in order. */
export function importSpecifiers(sourceText: string): string[] {
  return ts.preProcessFile(sourceText, true, true).importedFiles.map((f) => f.fileName);
}

/** The imports of one file, given its src-relative path and text. */
export function importsOf(file: string, sourceText: string): Import[] {
  return importSpecifiers(sourceText).map((specifier) => {
    return { file, specifier, toFolder: targetFolder(file, specifier) };
  });
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|cts)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every import of every TypeScript file under src/. */
export function readImports(root = srcRoot): Import[] {
  return sourceFiles(root).flatMap((path) => {
    const file = relative(root, path).split(sep).join('/');
    return importsOf(file, readFileSync(path, 'utf8'));
  });
}

/** Folder-to-folder edges (from → to → files that make the edge), imports inside a folder left out. */
export function folderEdges(imports: Import[]): Map<string, Map<string, string[]>> {
  const edges = new Map<string, Map<string, string[]>>();
  for (const { file, toFolder } of imports) {
    const from = folderOf(file);
    if (toFolder === undefined || toFolder === from) continue;
    const targets = edges.get(from) ?? new Map<string, string[]>();
    edges.set(from, targets);
    const files = targets.get(toFolder) ?? [];
    if (!files.includes(file)) files.push(file);
    targets.set(toFolder, files);
  }
  return edges;
}

/** Strongly connected components with more than one folder: each is a set of folders in a cycle. */
export function cycles(edges: Map<string, Map<string, string[]>>): string[][] {
  // Tarjan's algorithm; the graph has a few dozen nodes, so recursion depth is no concern.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const nodes = new Set([...edges.keys(), ...[...edges.values()].flatMap((t) => [...t.keys()])]);
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node)?.keys() ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const node of [...nodes].sort()) if (!index.has(node)) visit(node);
  return found;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const edges = folderEdges(readImports());
  for (const from of [...edges.keys()].sort()) {
    for (const [to, files] of [...edges.get(from)!].sort(([a], [b]) => a.localeCompare(b))) {
      console.log(`${from} -> ${to}\t${files.join(' ')}`);
    }
  }
  for (const component of cycles(edges)) console.log(`cycle: ${component.join(' ')}`);
}
