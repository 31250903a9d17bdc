import { startKvs } from './systems/kvs.ts';
import { stopAll } from './systems/procs.ts';
const sys = await startKvs({ dir: '/tmp/prof', basePort: 24000, shards: 3, hosts: 3, nodeArgs: ['--cpu-prof', '--cpu-prof-dir=/tmp/prof/cpu'] });
await new Promise((r) => setTimeout(r, 25_000));
await sys.stop();
await stopAll();
