// A container's environment as a kubelet gives it: `valueFrom.fieldRef` from the pod's metadata,
// `$(NAME)` expanded from the variables listed before it (an unknown reference stays as written).
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}

export function containerEnv(pod: { name: string; namespace: string }, env: EnvVar[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    const path = e.valueFrom?.fieldRef?.fieldPath;
    if (path !== undefined) {
      if (path !== 'metadata.name' && path !== 'metadata.namespace') throw new Error(`fieldRef ${path} is not one the stand-in kubelet knows`);
      out[e.name] = path === 'metadata.name' ? pod.name : pod.namespace;
    } else out[e.name] = (e.value ?? '').replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string) => out[v] ?? m);
  }
  return out;
}
