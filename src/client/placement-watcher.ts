// A ConfigWatcher reading the placement group through a KvsClient on its replicas: what servers,
// the smart client and the admin commands use to follow the cluster configuration.
import { ConfigWatcher } from '../cluster/config-watcher.ts';
import { KvsClient } from './client.ts';

export function placementWatcher(endpoints: string[], pollMs?: number, timeoutMs = 2000): ConfigWatcher {
  return new ConfigWatcher(new KvsClient({ endpoints, timeoutMs }), pollMs);
}

/** Watchers shared in this process, by their sorted placement endpoints. */
const shared = new Map<string, ConfigWatcher>();

/**
 * The process's watcher for these placement endpoints, shared by every replica the process hosts
 * (`kvs host`): the placement group is polled once per process, not once per replica. Each caller
 * holds it until it calls stop(); the last stop ends it. Started on first use.
 */
export function sharedPlacementWatcher(endpoints: string[]): ConfigWatcher {
  const key = [...endpoints].sort().join(',');
  const known = shared.get(key);
  if (known && !known.ended) return known.retain();
  const watcher = placementWatcher(endpoints);
  shared.set(key, watcher);
  watcher.start();
  return watcher;
}
