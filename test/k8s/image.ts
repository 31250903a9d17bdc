// Builds the server image from the Containerfile for the container tests: first the local stand-in
// of its base image (base-image.sh: no registry here), then the Containerfile with podman (layers
// cached, so a second build of the same sources takes seconds).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PODMAN, podman } from '../support/pods.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BASE_IMAGE = 'localhost/node:20-bookworm-slim';

/**
 * Builds `tag` with the image label version `version` (the label makes images of different versions
 * distinct even when every layer comes from the cache); returns the build's wall time (s).
 */
export async function buildImage(tag: string, version: string): Promise<number> {
  const t0 = performance.now();
  await run(`${ROOT}test/k8s/base-image.sh`, [BASE_IMAGE], { timeout: 900_000, maxBuffer: 64 << 20 });
  const args = ['build', '--pull=never', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--build-arg', `NODE_IMAGE=${BASE_IMAGE}`, '--build-arg', `VERSION=${version}`, '--label', `org.opencontainers.image.version=${version}`, '-t', tag, '-f', `${ROOT}Containerfile`, ROOT];
  try {
    await run(PODMAN[0]!, [...PODMAN.slice(1), ...args], { timeout: 1_200_000, maxBuffer: 256 << 20 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`podman build ${tag} failed: ${err.message}\n${(err.stdout ?? '').slice(-4000)}\n${(err.stderr ?? '').slice(-4000)}`);
  }
  return (performance.now() - t0) / 1000;
}

/** The image's size as podman reports it (bytes). */
export async function imageBytes(tag: string): Promise<number> {
  return Number((await podman(['image', 'inspect', '-f', '{{.Size}}', tag])).trim());
}

export async function imageId(tag: string): Promise<string> {
  return (await podman(['image', 'inspect', '-f', '{{.Id}}', tag])).trim();
}
