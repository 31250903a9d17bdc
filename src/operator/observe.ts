// From the Kubernetes objects of one store (StatefulSets, pods, volume claims) to what the reconcile
// core reads, pure. Objects are plain JSON as the API returns them.
import { ANNOTATION_JOIN_FROM, ANNOTATION_REVISION, LABEL_GROUP_ID, LABEL_STORE, podAddress } from './objects.ts';
import type { ObservedGroup, ObservedPod } from './reconcile.ts';

export interface Obj {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: unknown; resourceVersion?: string; generation?: number };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** A test harness (or a setup without cluster DNS) may publish a pod's native address here. */
export const ANNOTATION_ADDRESS = 'kvs.sharded-kvs.dev/address';

/** `dnsSuffix`: what follows `<pod>.<set>.` in a pod's name (objects.ts `dnsSuffix`). */
export function observeGroups(store: string, dnsSuffix: string, statefulSets: Obj[], pods: Obj[]): ObservedGroup[] {
  const mine = (o: Obj): boolean => o.metadata?.labels?.[LABEL_STORE] === store;
  return statefulSets.filter(mine).map((sts) => {
    const id = Number(sts.metadata!.labels![LABEL_GROUP_ID]);
    const name = sts.metadata!.name!;
    const retention = (sts.spec?.persistentVolumeClaimRetentionPolicy as { whenDeleted?: unknown } | undefined)?.whenDeleted;
    const groupPods = pods.filter((p) => mine(p) && p.metadata?.labels?.group === name).map((p) => observePod(store, dnsSuffix, id, name, p));
    return {
      id,
      replicas: Number(sts.spec?.replicas ?? 0),
      revision: sts.metadata?.annotations?.[ANNOTATION_REVISION] ?? '',
      joinFrom: Number(sts.metadata?.annotations?.[ANNOTATION_JOIN_FROM] ?? 0),
      pods: groupPods.sort((a, b) => a.ordinal - b.ordinal),
      volumes: [],
      ...(Array.isArray(sts.spec?.volumeClaimTemplates) ? { claimTemplates: sts.spec.volumeClaimTemplates as unknown[] } : {}),
      ...(typeof retention === 'string' ? { retention } : {}),
    };
  });
}

/** Adds each group's claimed ordinals; returns ids of groups whose claims outlived their StatefulSet. */
export function observeVolumes(store: string, groups: ObservedGroup[], claims: Obj[]): number[] {
  const orphans = new Set<number>();
  for (const c of claims) {
    const labels = c.metadata?.labels ?? {};
    if (labels[LABEL_STORE] !== store) continue;
    const id = Number(labels[LABEL_GROUP_ID]);
    const ordinal = Number(c.metadata?.name?.split('-').pop());
    const g = groups.find((x) => x.id === id);
    if (g) g.volumes = [...new Set([...g.volumes, ordinal])].sort((a, b) => a - b);
    else if (Number.isInteger(id)) orphans.add(id);
  }
  return [...orphans].sort((a, b) => a - b);
}

function observePod(store: string, dnsSuffix: string, group: number, groupName: string, p: Obj): ObservedPod {
  const name = p.metadata!.name!;
  const ordinal = Number(name.slice(groupName.length + 1));
  const status = (p.status ?? {}) as { phase?: string; conditions?: { type: string; status: string }[]; containerStatuses?: { name: string; image?: string; state?: { running?: unknown } }[] };
  const container = status.containerStatuses?.find((c) => c.name === 'kvs');
  const specImage = ((p.spec?.containers as { name: string; image: string }[] | undefined) ?? []).find((c) => c.name === 'kvs')?.image ?? '';
  return {
    ordinal,
    name,
    address: p.metadata?.annotations?.[ANNOTATION_ADDRESS] ?? podAddress(store, dnsSuffix, group, ordinal),
    running: status.phase === 'Running' && !!container?.state?.running,
    ready: status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    revision: p.metadata?.annotations?.[ANNOTATION_REVISION] ?? '',
    image: container?.image ?? specImage,
    terminating: !!p.metadata?.deletionTimestamp,
  };
}
