import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { within } from '../core/within.js';

/** One thing a process needs to do its work (Redis, the Docker engine): resolves when it answers, rejects saying why not. */
export interface ReadinessCheck {
  /** Named in the /readyz answer: `redis`, `docker`. */
  readonly name: string;
  check(): Promise<unknown>;
}

/** What {@link operationsRoutes} serves. */
export interface OperationsOptions {
  readonly metrics: { readonly registry: Registry };
  /** The checks, asked anew by every /readyz (so a process can add its worker's once it runs), then run all at once. */
  readonly ready: () => readonly ReadinessCheck[];
  /** How long each check may take before it counts as failed; default 2 s. */
  readonly checkTimeoutMs?: number;
}

function answer(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
}

/**
 * `/healthz` alone (GET and HEAD: 200 `ok`), for a port anyone may reach: it says the process
 * serves requests and nothing more. Returns false for anything else.
 */
export function healthRoute(): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || (req.url ?? '').split('?')[0] !== '/healthz') return false;
    answer(res, 200, 'ok\n');
    return true;
  };
}

/**
 * The operations endpoints of a long-running process, as a request handler that answers
 * (and returns true) for GET and HEAD of `/metrics` (Prometheus text), `/healthz` (200 `ok`
 * while the process serves requests at all) and `/readyz` (200 `ready: <checks>` when every
 * check answered within its timeout, else 503 `not ready: <name> (<why>)` for each that did
 * not), and returns false for anything else, so it sits in front of the other routes.
 * A failed check is never thrown: it is the answer. /metrics and /readyz tell pod names, host
 * ids, costs and Redis's errors: serve them where only the operator's scraper reaches.
 */
export function operationsRoutes(options: OperationsOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const timeoutMs = options.checkTimeoutMs ?? 2_000;
  const { registry } = options.metrics;
  const health = healthRoute();

  const readiness = async (): Promise<{ ready: boolean; text: string }> => {
    const checks = options.ready();
    const results = await Promise.allSettled(checks.map((c) => within(timeoutMs, Promise.resolve().then(() => c.check()))));
    const failed = results.flatMap((result, i) => {
      if (result.status === 'fulfilled') return [];
      const reason: unknown = result.reason;
      return [`${checks[i]?.name} (${(reason instanceof Error ? reason.message : String(reason)).replace(/\s+/g, ' ').trim()})`];
    });
    if (failed.length > 0) return { ready: false, text: `not ready: ${failed.join(', ')}\n` };
    return { ready: true, text: `ready: ${checks.map((c) => c.name).join(', ') || 'nothing to check'}\n` };
  };

  return (req, res) => {
    if (health(req, res)) return true;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = (req.url ?? '').split('?')[0];
    if (path === '/readyz') {
      readiness().then(
        ({ ready, text }) => answer(res, ready ? 200 : 503, text),
        (err: unknown) => answer(res, 503, `not ready: ${err instanceof Error ? err.message : String(err)}\n`),
      );
      return true;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => answer(res, 200, text, registry.contentType),
        (err: unknown) => answer(res, 500, `The metrics could not be collected: ${err instanceof Error ? err.message : String(err)}\n`),
      );
      return true;
    }
    return false;
  };
}
