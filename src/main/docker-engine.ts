import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ConfigError, type EngineConfig } from '../config.js';

/** The files of a client certificate directory, as the docker CLI reads `DOCKER_CERT_PATH`, and what each is. */
const CERT_FILES = [['ca.pem', 'the CA that signed the engine\'s certificate'], ['cert.pem', 'this client\'s certificate'], ['key.pem', 'its private key']] as const;

function readCertificates(certPath: string, explicit: boolean): { ca: Buffer; cert: Buffer; key: Buffer } {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(join(certPath, file));
    } catch (err) {
      const where = explicit ? `DOCKER_CERT_PATH is "${certPath}"` : `DOCKER_CERT_PATH is unset, so the docker CLI's default "${certPath}" is used`;
      throw new ConfigError(`${where}, and its ${file} (${what}) cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}). DOCKER_TLS_VERIFY asks for TLS with a client certificate: put ca.pem, cert.pem and key.pem there, as the docker CLI reads them, or point DOCKER_CERT_PATH at the directory that has them.`, { cause: err });
    }
  };
  const [ca, cert, key] = CERT_FILES.map(([file, what]) => read(file, what)) as [Buffer, Buffer, Buffer];
  return { ca, cert, key };
}

/**
 * Pure apart from reading the certificates: dockerode's options for `engine`. The local
 * socket when DOCKER_HOST is unset; `unix://` paths as given; `tcp://` over TLS with the
 * client certificate of DOCKER_CERT_PATH when DOCKER_TLS_VERIFY is set (any value, as the
 * docker CLI reads it), plain HTTP otherwise. Throws a ConfigError naming the setting for an
 * address it cannot use, a certificate it cannot read, and `ssh://` (see below).
 */
export function engineOptions(engine: EngineConfig, userHome: string): Docker.DockerOptions {
  const { host } = engine;
  // docker-modem reads DOCKER_CERT_PATH's files itself whenever it is set: a wrong one must be named here first.
  const certificates = engine.tlsVerify || engine.certPath ? () => readCertificates(engine.certPath ?? join(userHome, '.docker'), engine.certPath !== undefined) : undefined;
  if (!host) return {};
  if (host.startsWith('unix://')) {
    certificates?.();
    return { socketPath: host.slice('unix://'.length) || '/var/run/docker.sock' };
  }
  if (host.startsWith('ssh://')) {
    // docker-modem's ssh transport keeps one ssh connection per client and ends it whenever
    // it opens another HTTP connection: a run's attached stream would be cut by the next
    // call. It also checks no host key.
    throw new ConfigError(`DOCKER_HOST is "${host}": cldpd does not drive an engine over ssh:// itself (its Docker library's ssh transport cuts a running session's stream whenever it makes another call, and checks no host key). Forward the remote engine's socket with OpenSSH instead, which checks known_hosts and keeps each stream: "ssh -nNT -L /run/cldpd/engine.sock:/var/run/docker.sock ${host.slice('ssh://'.length)}", then DOCKER_HOST=unix:///run/cldpd/engine.sock (docs/operating.md, "Remote engines").`);
  }
  let url: URL;
  try {
    url = new URL(host.includes('://') ? host : `tcp://${host}`);
  } catch {
    throw new ConfigError(`DOCKER_HOST is "${host}": use unix:///path/to/docker.sock or tcp://host:port (with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH for an engine that takes TLS).`);
  }
  if (url.protocol !== 'tcp:' || !url.hostname || !url.port) {
    throw new ConfigError(`DOCKER_HOST is "${host}": use unix:///path/to/docker.sock or tcp://host:port, the port given (2376 is TLS's usual one).`);
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!engine.tlsVerify) {
    certificates?.();
    return { host: hostname, port: url.port, protocol: 'http' };
  }
  return { host: hostname, port: url.port, protocol: 'https', ...(certificates?.() ?? {}) };
}

/**
 * The Docker client of this process's engine (see {@link engineOptions}): the one place the
 * composition roots make it. Throws a ConfigError naming the setting at fault.
 */
export function dockerClient(engine: EngineConfig, userHome: string): Docker {
  return new Docker(engineOptions(engine, userHome));
}
