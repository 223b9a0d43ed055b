import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

/** A listening operations server. */
export interface RunningMetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `routes` (see operationsRoutes) on `port` and `host` (all interfaces when
 * undefined; port 0 picks a free one), apart from the webhook port: CLDPD_METRICS_ADDRESS
 * decides who may read them. Anything else is answered 404. Rejects naming the setting to
 * change when the port is taken.
 */
export async function startMetricsServer(routes: (req: IncomingMessage, res: ServerResponse) => boolean, port: number, host: string | undefined): Promise<RunningMetricsServer> {
  const http = createServer((req, res) => {
    if (routes(req, res)) return;
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('Not found: this port serves /metrics, /healthz and /readyz.\n');
  });
  // Scrapers send small requests quickly; a slow client gets no more than a socket for a while.
  http.requestTimeout = 30_000;
  http.headersTimeout = 10_000;
  http.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    http.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE'
        ? new Error(`Port ${port} (CLDPD_METRICS_PORT) is in use: stop what listens there, set CLDPD_METRICS_PORT to another port, or to 0 to serve no metrics; cldpd runs on without them.`, { cause: err })
        : err);
    });
    http.listen(port, host, () => resolve());
  });
  const address = http.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: async () => {
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      await closed;
    },
  };
}
