// A generator child process: receives its share of the load over IPC, runs it, sends the result.
import { createDriver } from '../drivers/index.ts';
import type { Driver } from './driver.ts';
import type { FromWorker, ToWorker, WorkerInit } from './generator.ts';
import { KeySpace } from './keys.ts';
import { preload, runLoop } from './loop.ts';

let init: WorkerInit | undefined;
let driver: Driver | undefined;
const reply = (m: FromWorker): void => void process.send!(m);

process.on('message', (m: ToWorker) => {
  handle(m).catch((e: unknown) => reply({ type: 'failed', message: e instanceof Error ? e.message : String(e) }));
});
process.on('disconnect', () => process.exit(0));

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'init': {
      init = m.init;
      const space = new KeySpace(init.spec.keys, init.spec.keySize, init.spec.valueSize);
      driver = await createDriver(init.protocol, {
        target: init.target,
        space,
        slots: init.slots,
        conns: init.conns,
        sessions: init.sessions,
        linearizable: init.linearizable,
        worker: init.worker,
      });
      await driver.connect();
      return reply({ type: 'ready' });
    }
    case 'preload':
      return reply({ type: 'preloaded', ...(await preload(driver!, m.from, m.to, init!.slots)) });
    case 'run':
      return reply({ type: 'result', result: await runLoop(driver!, init!.spec, { slots: init!.slots, rate: init!.rate, worker: init!.worker }, m.startAt) });
    case 'close':
      await driver?.close();
      process.exit(0);
  }
}
