// The preStop policy every replica's pod follows, for the manifests' test and the operator's.
import assert from 'node:assert/strict';

/**
 * Endpoints drop a terminating pod asynchronously: the server container sleeps in preStop (an exec
 * of `sleep`, which the Debian-based image has) before the kubelet sends SIGTERM, and the grace
 * period, counted from the hook's start, leaves the server 20 s more for its graceful stop.
 */
export function assertPreStop(what: string, container: unknown, grace: number | undefined): void {
  const command = (container as { lifecycle?: { preStop?: { exec?: { command?: string[] } } } } | undefined)?.lifecycle?.preStop?.exec?.command;
  assert.ok(command, `${what}: no preStop exec hook`);
  assert.equal(command[0], 'sleep', `${what}: preStop ${JSON.stringify(command)}`);
  const seconds = Number(command[1]);
  assert.ok(command.length === 2 && seconds >= 3 && seconds <= 15, `${what}: preStop sleeps ${command[1]} s`);
  assert.ok(grace !== undefined && grace >= seconds + 20, `${what}: terminationGracePeriodSeconds ${grace} leaves less than 20 s after the ${seconds} s preStop`);
}
