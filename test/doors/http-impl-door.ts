// Starts the HTTP door with a chosen implementation (uWebSockets.js or the node:http fallback), as
// KVS_HTTP_IMPL picks it at start, without leaving the variable changed for other tests.
import type { DoorContext } from '../../src/doors/door-context.ts';
import { startHttpDoor } from '../../src/doors/http-door.ts';

export async function startHttpDoorWith(impl: 'uws' | 'node', ctx: DoorContext, opts: Parameters<typeof startHttpDoor>[1]): ReturnType<typeof startHttpDoor> {
  const was = process.env.KVS_HTTP_IMPL;
  process.env.KVS_HTTP_IMPL = impl;
  try {
    return await startHttpDoor(ctx, opts);
  } finally {
    if (was === undefined) delete process.env.KVS_HTTP_IMPL;
    else process.env.KVS_HTTP_IMPL = was;
  }
}
