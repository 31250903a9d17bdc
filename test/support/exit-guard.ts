// Preloaded into every test file's process (Makefile: NODE_TEST). A file whose tests are done but
// which still holds a handle (a socket, a timer, a child) would keep its process, and so the whole
// run, alive. `--test-force-exit` would end it, but Node 20's runner then can lose the verdicts of
// the file's last tests (nodejs/node#64833). So the process is left to end by itself, and only if it
// is still alive a while after its last test is it ended here, naming what kept it: by then its
// verdicts have long been written. The exit code stays the runner's (process.exitCode).
import { after } from 'node:test';

const GRACE_MS = 5_000;

after(() => {
  const timer = setTimeout(() => {
    const open = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout');
    process.stderr.write(`exit-guard: ${process.argv[1] ?? 'test file'} still running ${GRACE_MS / 1000} s after its last test; open: ${open.join(', ')}\n`);
    process.exit();
  }, GRACE_MS);
  // Unreferenced: a process with nothing else left ends at once, without waiting for this.
  timer.unref();
});
