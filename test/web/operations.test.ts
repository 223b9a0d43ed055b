import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startMetricsServer, type RunningMetricsServer } from '../../src/web/metrics-server.js';
import { createMetrics } from '../../src/web/metrics.js';
import { operationsRoutes, type ReadinessCheck } from '../../src/web/operations.js';
import { sampleValue } from './scrape.js';

const open: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  for (const server of open.splice(0)) await server.close();
});

/** Serves the routes in front of a 404, as the webhook server does; resolves with its base URL. */
async function serve(checks: ReadinessCheck[], options: { checkTimeoutMs?: number } = {}) {
  const metrics = createMetrics();
  const routes = operationsRoutes({ metrics, ready: () => checks, ...options });
  const server: Server = createServer((req, res) => {
    if (!routes(req, res)) res.writeHead(404).end('elsewhere');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  open.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
  return { metrics, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function get(url: string): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

const answers = (name: string): ReadinessCheck => ({ name, check: async () => 'PONG' });

describe('operationsRoutes', () => {
  it('/healthz answers ok, whatever the checks say', async () => {
    const { base } = await serve([{ name: 'redis', check: () => Promise.reject(new Error('down')) }]);
    expect(await get(`${base}/healthz`)).toMatchObject({ status: 200, text: 'ok\n' });
  });

  it('/readyz is 200 naming what it checked when every check answers', async () => {
    const { base } = await serve([answers('redis'), answers('docker')]);
    expect(await get(`${base}/readyz`)).toMatchObject({ status: 200, text: 'ready: redis, docker\n' });
  });

  it('/readyz is 503 naming each check that failed and why', async () => {
    const { base } = await serve([{ name: 'redis', check: () => Promise.reject(new Error('connection is\nclosed')) }, answers('docker')]);
    expect(await get(`${base}/readyz`)).toMatchObject({ status: 503, text: 'not ready: redis (connection is closed)\n' });
  });

  it('/readyz is 503 when a check throws instead of rejecting', async () => {
    const { base } = await serve([{ name: 'docker', check: () => { throw new Error('no socket'); } }]);
    expect(await get(`${base}/readyz`)).toMatchObject({ status: 503, text: 'not ready: docker (no socket)\n' });
  });

  it('/readyz is 503 when a check does not answer within its timeout, and answers in bounded time', async () => {
    const { base } = await serve([answers('redis'), { name: 'docker', check: () => new Promise(() => undefined) }], { checkTimeoutMs: 100 });
    expect(await get(`${base}/readyz`)).toMatchObject({ status: 503, text: 'not ready: docker (did not answer within 100 ms)\n' });
  });

  it('/readyz asks for the checks anew each time: one added later is run', async () => {
    const checks = [answers('redis')];
    const { base } = await serve(checks);
    expect((await get(`${base}/readyz`)).status).toBe(200);
    checks.push({ name: 'worker', check: () => Promise.reject(new Error('still starting')) });
    expect(await get(`${base}/readyz`)).toMatchObject({ status: 503, text: 'not ready: worker (still starting)\n' });
  });

  it('/metrics is the Prometheus text of the registry', async () => {
    const { base, metrics } = await serve([]);
    metrics.webhookDelivery('issues', 'accepted');
    const scraped = await get(`${base}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.type).toBe(metrics.registry.contentType);
    expect(sampleValue(scraped.text, 'cldpd_webhook_deliveries_total', { event: 'issues', outcome: 'accepted' })).toBe(1);
    expect(scraped.text).toContain('# TYPE cldpd_run_duration_seconds histogram');
  });

  it('leaves every other request to the routes behind it', async () => {
    const { base } = await serve([]);
    expect(await get(`${base}/metrics/x`)).toMatchObject({ status: 404, text: 'elsewhere' });
    expect((await fetch(`${base}/metrics`, { method: 'POST', body: '{}' })).status).toBe(404);
  });
});

describe('startMetricsServer', () => {
  it('serves the routes on its own port and answers 404 elsewhere', async () => {
    const metrics = createMetrics();
    const server: RunningMetricsServer = await startMetricsServer(operationsRoutes({ metrics, ready: () => [answers('redis')] }), 0, '127.0.0.1');
    open.push(server);
    expect(await get(`http://127.0.0.1:${server.port}/readyz`)).toMatchObject({ status: 200, text: 'ready: redis\n' });
    expect((await get(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
  });

  it('says which setting to change when its port is taken', async () => {
    const first = await startMetricsServer(() => false, 0, '127.0.0.1');
    open.push(first);
    await expect(startMetricsServer(() => false, first.port, '127.0.0.1')).rejects.toThrow(/Port \d+ \(CLDPD_METRICS_PORT\) is in use: .*set CLDPD_METRICS_PORT to another port, or to 0/);
  });
});
