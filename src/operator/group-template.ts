// Reads the group template the operator instantiates: kustomize/base/group (the component: its
// resources and replacements), the server settings of kustomize/base/config.yaml, and the patch of
// kustomize/overlays/tracing. These files are the one source of a group's objects, for
// `kubectl kustomize` and for the operator alike; they ship next to dist/ (package.json "files",
// the Containerfile), two levels above this module in both layouts.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { TemplateError, type PatchOp, type Replacement } from './kustomize.ts';
import type { K8sObject } from './objects.ts';

export interface GroupTemplate {
  /** StatefulSet, Service, PodDisruptionBudget with the placeholder group name. */
  resources: K8sObject[];
  replacements: Replacement[];
  /** The ConfigMap every replica reads its settings from (kvs.yaml). */
  config: K8sObject;
  /** What tracing on changes in a StatefulSet. */
  tracing: PatchOp[];
}

export const TEMPLATE_ROOT = new URL('../../kustomize/', import.meta.url);

function readYaml(root: URL, path: string): unknown {
  const url = new URL(path, root);
  let text: string;
  try {
    text = readFileSync(url, 'utf8');
  } catch (e) {
    throw new TemplateError(`the group template is incomplete: cannot read ${fileURLToPath(url)} (${(e as Error).message})`);
  }
  try {
    return parseYaml(text);
  } catch (e) {
    throw new TemplateError(`${fileURLToPath(url)} is not valid YAML: ${(e as Error).message}`);
  }
}

export function loadGroupTemplate(root: URL = TEMPLATE_ROOT): GroupTemplate {
  const component = readYaml(root, 'base/group/kustomization.yaml') as { resources?: string[]; replacements?: Replacement[] };
  const resources = (component.resources ?? []).map((f) => readYaml(root, `base/group/${f}`) as K8sObject);
  const kinds = resources.map((r) => r.kind).sort().join(',');
  if (kinds !== 'PodDisruptionBudget,Service,StatefulSet') throw new TemplateError(`base/group lists ${kinds || 'nothing'}; the operator needs a StatefulSet, a Service and a PodDisruptionBudget`);
  const tracingOverlay = readYaml(root, 'overlays/tracing/kustomization.yaml') as { patches?: { target?: { kind?: string }; patch?: string }[] };
  const tracing = (tracingOverlay.patches ?? []).filter((p) => p.target?.kind === 'StatefulSet').flatMap((p) => parseYaml(p.patch ?? '[]') as PatchOp[]);
  return { resources, replacements: component.replacements ?? [], config: readYaml(root, 'base/config.yaml') as K8sObject, tracing };
}
