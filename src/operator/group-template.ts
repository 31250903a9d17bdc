// Reads the group template the operator instantiates: kustomize/base/group (the component: its
// resources and replacements), the server settings (the configMapGenerator kvs-config of
// kustomize/base/kustomization.yaml and the file it names, kustomize/base/kvs.yaml), and the patch
// of kustomize/overlays/tracing. These files are the one source of a group's objects, for
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

function readText(root: URL, path: string): string {
  const url = new URL(path, root);
  try {
    return readFileSync(url, 'utf8');
  } catch (e) {
    throw new TemplateError(`the group template is incomplete: cannot read ${fileURLToPath(url)} (${(e as Error).message})`);
  }
}

function readYaml(root: URL, path: string): unknown {
  const url = new URL(path, root);
  const text = readText(root, path);
  try {
    return parseYaml(text);
  } catch (e) {
    throw new TemplateError(`${fileURLToPath(url)} is not valid YAML: ${(e as Error).message}`);
  }
}

/** A configMapGenerator entry of a kustomization (the fields the base uses). */
interface ConfigMapGenerator {
  name?: string;
  files?: string[];
  literals?: string[];
  options?: { labels?: Record<string, string>; annotations?: Record<string, string> };
}

/** The base's settings ConfigMap as Kustomize generates it, without the name's hash suffix. */
function settingsConfigMap(root: URL): K8sObject {
  const base = readYaml(root, 'base/kustomization.yaml') as { configMapGenerator?: ConfigMapGenerator[] };
  const gen = (base.configMapGenerator ?? []).find((g) => g.name === SETTINGS_CONFIGMAP);
  const where = fileURLToPath(new URL('base/kustomization.yaml', root));
  if (!gen) throw new TemplateError(`${where} has no configMapGenerator named ${SETTINGS_CONFIGMAP} (the server settings)`);
  if ((gen.literals ?? []).length > 0) throw new TemplateError(`${where}: the operator reads ${SETTINGS_CONFIGMAP} from files only, not literals`);
  const data: Record<string, string> = {};
  for (const f of gen.files ?? []) {
    // `key=path` or `path` (the key is then the file's base name), as Kustomize reads them.
    const eq = f.indexOf('=');
    const path = eq < 0 ? f : f.slice(eq + 1);
    data[eq < 0 ? path.slice(path.lastIndexOf('/') + 1) : f.slice(0, eq)] = readText(root, `base/${path}`);
  }
  const { labels, annotations } = gen.options ?? {};
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: SETTINGS_CONFIGMAP, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) }, data };
}

/** The generated settings ConfigMap of kustomize/base (rendered as kvs-config-<hash of its data>). */
export const SETTINGS_CONFIGMAP = 'kvs-config';

export function loadGroupTemplate(root: URL = TEMPLATE_ROOT): GroupTemplate {
  const component = readYaml(root, 'base/group/kustomization.yaml') as { resources?: string[]; replacements?: Replacement[] };
  const resources = (component.resources ?? []).map((f) => readYaml(root, `base/group/${f}`) as K8sObject);
  const kinds = resources.map((r) => r.kind).sort().join(',');
  if (kinds !== 'PodDisruptionBudget,Service,StatefulSet') throw new TemplateError(`base/group lists ${kinds || 'nothing'}; the operator needs a StatefulSet, a Service and a PodDisruptionBudget`);
  const tracingOverlay = readYaml(root, 'overlays/tracing/kustomization.yaml') as { patches?: { target?: { kind?: string }; patch?: string }[] };
  const tracing = (tracingOverlay.patches ?? []).filter((p) => p.target?.kind === 'StatefulSet').flatMap((p) => parseYaml(p.patch ?? '[]') as PatchOp[]);
  return { resources, replacements: component.replacements ?? [], config: settingsConfigMap(root), tracing };
}
