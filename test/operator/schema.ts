// What an API server does with a CRD's schema, as far as the tests need it: the structural-schema
// check, defaulting, validation (types, required, enum, bounds) and the CEL rules, evaluated with a
// real CEL implementation. Used by the CRD test and by the fake API server.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { evaluate, parse as parseCel } from '@marcbachmann/cel-js';

export interface Schema {
  type?: string;
  format?: string;
  description?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
  default?: unknown;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: { rule: string; message: string }[];
}

export interface Crd {
  spec: {
    group: string;
    names: { kind: string; plural: string };
    versions: { name: string; subresources?: { status?: object }; additionalPrinterColumns?: { name: string; type: string; jsonPath: string }[]; schema: { openAPIV3Schema: Schema } }[];
  };
}

export function loadCrd(): Crd {
  return parseYaml(readFileSync(new URL('../../kustomize/crd/crd.yaml', import.meta.url), 'utf8')) as Crd;
}

/** Structural-schema violations (apiextensions' rules that apply to our schema), as paths. */
export function structuralProblems(s: Schema, path = '', root = true): string[] {
  const out: string[] = [];
  const special = s['x-kubernetes-int-or-string'] || s['x-kubernetes-preserve-unknown-fields'];
  if (!s.type && !special) out.push(`${path || '<root>'}: no type`);
  if (s.properties && s.additionalProperties !== undefined) out.push(`${path}: properties and additionalProperties together`);
  if (s.type === 'array' && !s.items) out.push(`${path}: array without items`);
  if (s['x-kubernetes-int-or-string'] && s.type) out.push(`${path}: int-or-string must not have a type`);
  if (s['x-kubernetes-list-type'] === 'map') {
    for (const k of s['x-kubernetes-list-map-keys'] ?? []) if (!s.items?.required?.includes(k)) out.push(`${path}: list map key ${k} not required`);
  }
  if (s.default !== undefined) {
    if (root) out.push(`${path}: default at the root`);
    out.push(...validate(s, s.default).map((e) => `${path}: default ${e}`));
  }
  for (const [k, p] of Object.entries(s.properties ?? {})) {
    if (root && k === 'metadata' && (p.properties || p.type !== 'object')) out.push('metadata: only type object allowed at the root');
    out.push(...structuralProblems(p, `${path}.${k}`, false));
  }
  if (typeof s.additionalProperties === 'object') out.push(...structuralProblems(s.additionalProperties, `${path}[*]`, false));
  if (s.items) out.push(...structuralProblems(s.items, `${path}[]`, false));
  return out;
}

/** The value with every missing defaulted field filled in (as the API server stores it). */
export function applyDefaults(s: Schema, v: unknown): unknown {
  if (v === undefined) return s.default === undefined ? undefined : structuredClone(s.default);
  if (Array.isArray(v) && s.items) return v.map((x) => applyDefaults(s.items!, x));
  if (typeof v === 'object' && v !== null && s.properties) {
    const o: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    for (const [k, p] of Object.entries(s.properties)) {
      const d = applyDefaults(p, o[k]);
      if (d !== undefined) o[k] = d;
    }
    return o;
  }
  return v;
}

/** Validation errors of `v` against `s`, CEL rules included (transition rules only with `old`). */
export function validate(s: Schema, v: unknown, old?: unknown, path = ''): string[] {
  const out: string[] = [];
  const at = path || '<root>';
  if (s['x-kubernetes-int-or-string']) {
    if (typeof v !== 'string' && !Number.isInteger(v)) out.push(`${at}: must be an integer or a string`);
    // JSON Schema: a pattern judges strings only, a minimum numbers only.
    if (typeof v === 'string' && s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(v)) out.push(`${at}: does not match ${s.pattern}`);
  } else if (s.type === 'object') {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return [`${at}: must be an object`];
    const o = v as Record<string, unknown>;
    const prev = isObject(old) ? old : undefined;
    for (const r of s.required ?? []) if (o[r] === undefined) out.push(`${at}.${r}: required`);
    for (const [k, x] of Object.entries(o)) {
      const p = s.properties?.[k] ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
      if (p) out.push(...validate(p, x, prev?.[k], `${path}.${k}`));
      else if (!s['x-kubernetes-preserve-unknown-fields'] && path !== '.metadata') out.push(`${at}.${k}: unknown field`);
    }
  } else if (s.type === 'array') {
    if (!Array.isArray(v)) return [`${at}: must be an array`];
    v.forEach((x, i) => out.push(...validate(s.items!, x, undefined, `${path}[${i}]`)));
  } else if (s.type === 'integer') {
    if (!Number.isInteger(v)) return [`${at}: must be an integer`];
  } else if (s.type === 'string') {
    if (typeof v !== 'string') return [`${at}: must be a string`];
    if (s.minLength !== undefined && v.length < s.minLength) out.push(`${at}: shorter than ${s.minLength}`);
    if (s.pattern !== undefined && !new RegExp(s.pattern, 'u').test(v)) out.push(`${at}: does not match ${s.pattern}`);
  } else if (s.type === 'boolean') {
    if (typeof v !== 'boolean') return [`${at}: must be a boolean`];
  }
  if (s.enum && !s.enum.includes(v)) out.push(`${at}: must be one of ${s.enum.join(', ')}`);
  if (typeof v === 'number' && s.minimum !== undefined && v < s.minimum) out.push(`${at}: less than ${s.minimum}`);
  if (typeof v === 'number' && s.maximum !== undefined && v > s.maximum) out.push(`${at}: more than ${s.maximum}`);
  if (out.length > 0) return out;
  for (const { rule, message } of s['x-kubernetes-validations'] ?? []) {
    if (rule.includes('oldSelf') && old === undefined) continue; // transition rules judge updates only
    const ok = evaluate(rule, { self: toCel(v), ...(old === undefined ? {} : { oldSelf: toCel(old) }) });
    if (ok !== true) out.push(`${at}: ${message}`);
  }
  return out;
}

/** Every CEL rule in the schema with the path it sits at. */
export function celRules(s: Schema, path = ''): { path: string; rule: string; message: string }[] {
  const here = (s['x-kubernetes-validations'] ?? []).map((r) => ({ path, ...r }));
  const below = Object.entries(s.properties ?? {}).flatMap(([k, p]) => celRules(p, `${path}.${k}`));
  return [...here, ...below, ...(s.items ? celRules(s.items, `${path}[]`) : [])];
}

export { parseCel };

/** JSON integers become CEL ints (JavaScript numbers would be CEL doubles). */
function toCel(v: unknown): unknown {
  if (Number.isInteger(v)) return BigInt(v as number);
  if (Array.isArray(v)) return v.map(toCel);
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toCel(x)]));
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
