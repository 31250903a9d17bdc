// grpc.health.v1 on the gRPC door (protos/health.proto): Check and Watch answer SERVING exactly
// when /readyz would say ready (the same Readiness check: a leader known and this replica caught
// up with it), NOT_SERVING otherwise. The overall service "" and "protos.KV" are known; others are
// NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch), as the protocol says.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { ReadinessResult } from './door-context.ts';

export const HEALTH_PROTO_PATH = fileURLToPath(new URL('../../protos/health.proto', import.meta.url));
export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/** The names a client may ask about: the whole server, and the key-value service. */
export const HEALTH_SERVICES: readonly string[] = ['', 'protos.KV'];

type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
interface HealthRequest {
  service: string;
}
interface HealthResponse {
  status: ServingStatus;
}

export interface HealthOptions {
  ready: () => Promise<ReadinessResult>;
  /** How often a Watch re-checks readiness (default 1 s). */
  watchEveryMs?: number;
}

export class HealthService {
  private readonly watches = new Set<grpc.ServerWritableStream<HealthRequest, HealthResponse>>();
  private closing = false;

  constructor(private readonly opts: HealthOptions) {}

  private async status(): Promise<ServingStatus> {
    if (this.closing) return 'NOT_SERVING';
    return (await this.opts.ready()).ready && !this.closing ? 'SERVING' : 'NOT_SERVING';
  }

  readonly handlers = {
    Check: (call: grpc.ServerUnaryCall<HealthRequest, HealthResponse>, callback: grpc.sendUnaryData<HealthResponse>): void => {
      if (!HEALTH_SERVICES.includes(call.request.service)) {
        callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${call.request.service}"; known: "" and "protos.KV"` });
        return;
      }
      this.status().then(
        (status) => callback(null, { status }),
        (e: unknown) => callback({ code: grpc.status.INTERNAL, details: (e as Error).message }),
      );
    },
    Watch: (call: grpc.ServerWritableStream<HealthRequest, HealthResponse>): void => {
      if (this.closing) {
        call.write({ status: 'NOT_SERVING' });
        call.end();
        return;
      }
      this.watches.add(call);
      call.on('cancelled', () => this.watches.delete(call));
      if (!HEALTH_SERVICES.includes(call.request.service)) {
        call.write({ status: 'SERVICE_UNKNOWN' }); // and stays open: the service may appear (it will not here)
        return;
      }
      void this.follow(call);
    },
  };

  /** Sends the status now and after every change, until the call ends or the door closes. */
  private async follow(call: grpc.ServerWritableStream<HealthRequest, HealthResponse>): Promise<void> {
    let last: ServingStatus | undefined;
    const every = this.opts.watchEveryMs ?? 1000;
    while (this.watches.has(call)) {
      const now = await this.status().catch((): ServingStatus => 'NOT_SERVING');
      if (!this.watches.has(call)) return;
      if (now !== last) {
        call.write({ status: now });
        last = now;
      }
      await new Promise((r) => setTimeout(r, every).unref());
    }
  }

  /** The door is closing: every watcher hears NOT_SERVING and its stream ends. */
  close(): void {
    this.closing = true;
    for (const call of this.watches) {
      call.write({ status: 'NOT_SERVING' });
      call.end();
    }
    this.watches.clear();
  }
}
