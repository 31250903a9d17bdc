// The operator as its own process, for the end-to-end test to kill with SIGKILL mid-change (a
// killed operator neither finishes its pass nor hands its Lease over). Timings are short so a run
// stays quick: the Lease lasts 3 s, a store is looked at every 300 ms.
//   node --import tsx test/operator/operator-process.ts API_URL IDENTITY
import { KubeConfig } from '@kubernetes/client-node';
import { Operator } from '../../src/operator/controller.ts';

const [url, identity] = process.argv.slice(2);
if (!url || !identity) throw new Error('usage: operator-process.ts API_URL IDENTITY');
const kc = new KubeConfig();
kc.loadFromOptions({ clusters: [{ name: 'fake', server: url, skipTLSVerify: true }], users: [{ name: 'op' }], contexts: [{ name: 'fake', cluster: 'fake', user: 'op' }], currentContext: 'fake' });
const op = new Operator(kc, { namespace: 'kvs', identity, leaseDurationS: 3, leaseRenewMs: 300, resyncMs: 300, membershipTimeoutMs: 60_000, onLeadershipLost: () => process.exit(1) });
await op.start();
process.on('SIGTERM', () => void op.stop().then(() => process.exit(0)));
