import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config.js';

/** The addresses other machines may open: this machine's external IPv4 and IPv6 addresses. */
function externalAddresses(): string[] {
  return Object.values(networkInterfaces()).flat()
    .filter((a) => a !== undefined && !a.internal && !(a.family === 'IPv6' && a.address.startsWith('fe80:')))
    .map((a) => (a?.family === 'IPv6' ? `[${a.address}]` : (a?.address ?? '')));
}

/** Says where to open the setup page: here, and from other machines when cldpd listens on every interface. */
export function logSetupAddresses(logger: Logger, config: Config, port: number, key: string): void {
  const { host } = config.github;
  const everyInterface = !host || host === '0.0.0.0' || host === '::';
  const here = everyInterface || host === '127.0.0.1' || host === 'localhost' || host === '::1' ? `http://localhost:${port}` : `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info(`No GitHub App yet: open ${here}/?key=${key} to register one (cldpd writes its credentials to .env), then restart. The key keeps others on the network out of the setup.`);
  if (everyInterface && config.github.setupAllowHttp) {
    const others = externalAddresses().map((a) => `http://${a}:${port}/?key=${key}`);
    logger.warn(`From another machine, open this machine's address instead${others.length > 0 ? `: ${others.join(', ')}` : ''}. CLDPD_SETUP_ALLOW_HTTP is set, so these pages answer plain HTTP: the registration code and any pasted key cross the network unencrypted.`);
  } else if (everyInterface) {
    logger.info(`From another machine, tunnel to this one (ssh -L ${port}:localhost:${port} <this machine>) and open http://localhost:${port}/?key=${key}, or use an HTTPS proxy in front: plain HTTP from another machine is refused (CLDPD_SETUP_ALLOW_HTTP=1 accepts the risk). HOST and PORT choose where cldpd listens.`);
  } else {
    logger.info(`cldpd listens on ${host} only (HOST); unset HOST, or set it to 0.0.0.0, to open the page from other machines.`);
  }
}
