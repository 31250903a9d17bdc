// `kvs host` whose supervisor is gone (kvs up killed, even -9): it stops its replicas gracefully
// and exits. Its `exited` reports then go to a closed IPC channel; process.send without a callback
// emits that as an 'error' on the process, which nothing handled: the first replica to end (a start
// the stop cut short ends at once) crashed the host while the others were still stopping (a
// leader's hand-over, its store's close). Found in review of ab08db9.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { isHostReport, type HostCommand, type HostReport } from '../../src/cli/host-protocol.ts';
import { freeAddress } from '../support/free-address.ts';
import { reapOnExit } from '../support/processes.ts';

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');

describe('kvs host whose supervisor disconnects', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-host-disconnect-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('stops every replica and exits 0, its reports to nobody notwithstanding', async () => {
    const [a1, a2, a101, placement] = [await freeAddress(), await freeAddress(), await freeAddress(), await freeAddress()];
    const host = reapOnExit(fork(MAIN, ['host'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }));
    let stderr = '';
    host.stderr!.on('data', (d: Buffer) => (stderr += String(d)));
    const exited = new Promise<number | null>((r) => host.on('exit', (code) => r(code)));
    const reports: HostReport[] = [];
    host.on('message', (m) => isHostReport(m) && reports.push(m));
    const send = (c: HostCommand): void => void host.send(c);
    // Two replicas of one group (the leader's stop waits for its hand-over), running.
    const group = ['--replicas', `1=${a1},2=${a2}`, '--log-format', 'json'];
    send({ type: 'start', id: 1, label: 'r1', argv: ['--id', '1', '--listen', a1, '--data', join(dir, 'r1'), ...group] });
    send({ type: 'start', id: 2, label: 'r2', argv: ['--id', '2', '--listen', a2, '--data', join(dir, 'r2'), ...group] });
    for (let i = 0; i < 1200 && reports.filter((r) => r.type === 'started').length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(reports.filter((r) => r.type === 'started').length, 2, `${JSON.stringify(reports)} ${stderr}`);
    await new Promise((r) => setTimeout(r, 1500)); // a leader is elected
    // A shard replica whose start waits for a placement group nobody runs: the stop cuts it short.
    send({ type: 'start', id: 101, label: 'r101', argv: ['--id', '101', '--group', '1', '--listen', a101, '--data', join(dir, 'r101'), '--replicas', `101=${a101}`, '--placement', placement, '--log-format', 'json'] });
    await new Promise((r) => setTimeout(r, 500));
    host.disconnect();
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<string>((r) => (timer = setTimeout(() => r('still running after 30 s'), 30_000)))]);
    clearTimeout(timer); // else it keeps this file's process alive for 30 s
    host.stderr!.destroy();
    assert.doesNotMatch(stderr, /ERR_IPC_CHANNEL_CLOSED/);
    assert.equal(code, 0, stderr.slice(-2000));
  });
});
