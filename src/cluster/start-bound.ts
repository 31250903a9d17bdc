// How long a replica may take to start before its doors open: the deadline of the /healthz answer
// a starting pod gives meanwhile (src/server/start-probe.ts), and the startup probes of the manifests
// (kustomize/overlays/prod) and of the operator's StatefulSets (src/operator/objects.ts), which an
// image from before that answer still needs (it answers nothing until its doors open).
import { structureCheckTimeoutMs } from '../storage/structure-check.ts';

/** How long a founder with an empty data directory looks for a running group (src/server/rejoin.ts). */
export const REJOIN_PROBE_MS = 10_000;

/**
 * How long a shard replica waits for the cluster configuration before it gives up and exits (the
 * container restarts). Its doors open only after it.
 */
export const CONFIG_WAIT_MS = 60_000;

/**
 * The longest a replica whose volume holds `bytes` may take before it answers /healthz: the rejoin
 * check of an empty volume, a shard replica's wait for the configuration, the walk of its store
 * (a child process reads every record before the store is opened).
 */
export const startBoundMs = (bytes: number): number => REJOIN_PROBE_MS + CONFIG_WAIT_MS + structureCheckTimeoutMs(bytes);
