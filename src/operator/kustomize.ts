// The two kustomize operations the group template uses, on plain JSON objects, pure: replacements
// (a value copied into field paths such as `spec.template.spec.containers.[name=kvs].env.[name=X].value`
// or `metadata.labels.[app.kubernetes.io/component]`) and JSON patches (RFC 6902: add, replace,
// remove). The operator instantiates kustomize/base/group with them, so the objects it applies are
// the ones `kubectl kustomize` renders from the same files (test/operator/objects.test.ts compares).

export class TemplateError extends Error {
  override name = 'TemplateError';
}

type Json = Record<string, unknown>;

export interface Replacement {
  source: { kind: string; fieldPath: string };
  targets: { select: { kind: string }; fieldPaths: string[] }[];
}

export interface PatchOp {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

/** `a.[x.y/z].[name=kvs].0` → ['a', '[x.y/z]', '[name=kvs]', '0']: dots inside brackets do not split. */
export function parseFieldPath(path: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of path) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (ch === '.' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  if (depth !== 0 || out.some((s) => s === '')) throw new TemplateError(`field path "${path}" is malformed`);
  return out;
}

/** The child a segment names: a key, `[key]`, a list index, or `[field=value]` (the list element with it). */
function child(node: unknown, seg: string): { container: Json | unknown[]; key: string | number } | undefined {
  if (Array.isArray(node)) {
    if (seg.startsWith('[') && seg.endsWith(']')) {
      const inner = seg.slice(1, -1);
      const eq = inner.indexOf('=');
      if (eq <= 0) return undefined;
      const index = node.findIndex((e) => typeof e === 'object' && e !== null && String((e as Json)[inner.slice(0, eq)]) === inner.slice(eq + 1));
      return index < 0 ? undefined : { container: node, key: index };
    }
    const index = Number(seg);
    return Number.isInteger(index) && index >= 0 && index < node.length ? { container: node, key: index } : undefined;
  }
  if (typeof node !== 'object' || node === null) return undefined;
  const key = seg.startsWith('[') && seg.endsWith(']') ? seg.slice(1, -1) : seg;
  return { container: node as Json, key };
}

function get(c: { container: Json | unknown[]; key: string | number }): unknown {
  return (c.container as Record<string | number, unknown>)[c.key];
}

export function getField(obj: unknown, path: string): unknown {
  let node = obj;
  for (const seg of parseFieldPath(path)) {
    const c = child(node, seg);
    if (!c) return undefined;
    node = get(c);
  }
  return node;
}

/** Sets an existing field (as kustomize's `create: false`): a path that names nothing is an error. */
export function setField(obj: unknown, path: string, value: unknown): void {
  const segs = parseFieldPath(path);
  let node = obj;
  for (const [i, seg] of segs.entries()) {
    const c = child(node, seg);
    if (!c || get(c) === undefined) throw new TemplateError(`field path "${path}" names nothing (at "${seg}")`);
    if (i === segs.length - 1) (c.container as Record<string | number, unknown>)[c.key] = value;
    else node = get(c);
  }
}

/** Copies each replacement's source value (read from `sources` by kind) into its targets' fields. */
export function applyReplacements(objects: Json[], replacements: Replacement[], sources: Json[]): void {
  for (const r of replacements) {
    const source = sources.find((s) => s.kind === r.source.kind);
    const value = source === undefined ? undefined : getField(source, r.source.fieldPath);
    if (value === undefined) throw new TemplateError(`replacement source ${r.source.kind} ${r.source.fieldPath} has no value`);
    for (const t of r.targets) {
      for (const o of objects.filter((x) => x.kind === t.select.kind)) for (const p of t.fieldPaths) setField(o, p, structuredClone(value));
    }
  }
}

/** RFC 6901 pointer → segments (`~1` is `/`, `~0` is `~`). */
function pointer(path: string): string[] {
  if (!path.startsWith('/')) throw new TemplateError(`JSON patch path "${path}" does not start with /`);
  return path.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** Applies JSON patch operations in order (add, replace, remove), in place. */
export function applyJsonPatch(obj: Json, ops: PatchOp[]): void {
  for (const op of ops) {
    const segs = pointer(op.path);
    const last = segs.pop()!;
    let node: unknown = obj;
    for (const s of segs) {
      node = Array.isArray(node) ? node[Number(s)] : typeof node === 'object' && node !== null ? (node as Json)[s] : undefined;
      if (node === undefined) throw new TemplateError(`JSON patch ${op.op} ${op.path}: no such path`);
    }
    if (Array.isArray(node)) {
      const index = last === '-' ? node.length : Number(last);
      if (!Number.isInteger(index) || index < 0 || index > node.length || (op.op !== 'add' && index >= node.length)) throw new TemplateError(`JSON patch ${op.op} ${op.path}: no such index`);
      if (op.op === 'add') node.splice(index, 0, structuredClone(op.value));
      else if (op.op === 'replace') node[index] = structuredClone(op.value);
      else node.splice(index, 1);
    } else if (typeof node === 'object' && node !== null) {
      const o = node as Json;
      if (op.op !== 'add' && !(last in o)) throw new TemplateError(`JSON patch ${op.op} ${op.path}: no such field`);
      if (op.op === 'remove') delete o[last];
      else o[last] = structuredClone(op.value);
    } else throw new TemplateError(`JSON patch ${op.op} ${op.path}: parent is not an object or list`);
  }
}
