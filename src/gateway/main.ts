// The egress gateway's process: `node gateway.mjs` in its own container, configured by
// CLDPD_GATEWAY. Standard output carries its notices (one JSON line each) and nothing else;
// a configuration it cannot use is named on standard error and ends it with code 2.
import { GATEWAY_ENV, parseGatewayConfig, type GatewayNotice } from './config.js';
import { Gateway } from './proxy.js';

const config = parseGatewayConfig(process.env[GATEWAY_ENV]);
if ('error' in config) {
  process.stderr.write(`cldpd gateway: ${config.error}\n`);
  process.exit(2);
}

const print = (notice: GatewayNotice): void => {
  process.stdout.write(`${JSON.stringify(notice)}\n`);
};
const gateway = new Gateway(config, print);
// A connection's errors end that connection; anything else that escapes is named and survived,
// since a gateway that exits cuts the run off from everything.
// Whoever reads the notices may go away; the gateway goes on without them.
process.stdout.on('error', () => undefined);
process.on('uncaughtException', (error) => {
  process.stderr.write(`cldpd gateway: unexpected error: ${error.stack ?? String(error)}\n`);
});

let port: number;
try {
  port = await gateway.listen(config.listen ?? '0.0.0.0');
} catch (error) {
  process.stderr.write(`cldpd gateway: cannot listen on ${config.listen ?? '0.0.0.0'} port ${config.port}: ${(error as Error).message}\n`);
  process.exit(1);
}
print({ event: 'listening', port });

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void gateway.close().then(() => process.exit(0));
  });
}
