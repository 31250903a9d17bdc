// A ConfigWatcher reading the placement group through a KvsClient on its replicas: what servers,
// the smart client and the admin commands use to follow the cluster configuration.
import { ConfigWatcher } from '../cluster/config-watcher.ts';
import { KvsClient } from './client.ts';

export function placementWatcher(endpoints: string[], pollMs?: number): ConfigWatcher {
  return new ConfigWatcher(new KvsClient({ endpoints, timeoutMs: 2000 }), pollMs);
}
