import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { engineOptions } from '../../src/main/docker-engine.js';

describe('the Docker engine of DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, read as the docker CLI reads them', () => {
  let home: string;
  let certs: string;
  const engine = (env: NodeJS.ProcessEnv) => loadConfig({ HOME: home, ...env }).engine;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'cldpd-engine-'));
    certs = join(home, 'certs');
    await mkdir(certs);
    for (const file of ['ca.pem', 'cert.pem', 'key.pem']) await writeFile(join(certs, file), `${file} bytes`);
  });
  afterAll(() => rm(home, { recursive: true, force: true }));

  it.each([
    ['unset: the local socket, as dockerode finds it', {}, {}],
    ['a unix socket', { DOCKER_HOST: 'unix:///run/other/docker.sock' }, { socketPath: '/run/other/docker.sock' }],
    ['tcp without TLS: plain HTTP, even on 2376', { DOCKER_HOST: 'tcp://10.0.0.5:2376' }, { host: '10.0.0.5', port: '2376', protocol: 'http' }],
    ['an IPv6 address', { DOCKER_HOST: 'tcp://[fd00::5]:2375' }, { host: 'fd00::5', port: '2375', protocol: 'http' }],
  ])('%s', (_, env, expected) => {
    expect(engineOptions(engine(env), home)).toEqual(expected);
  });

  it('DOCKER_TLS_VERIFY (any value, as the docker CLI reads it): https with the CA, certificate and key of DOCKER_CERT_PATH', () => {
    for (const verify of ['1', 'true', 'yes']) {
      const options = engineOptions(engine({ DOCKER_HOST: 'tcp://engine.example:2376', DOCKER_TLS_VERIFY: verify, DOCKER_CERT_PATH: certs }), home);
      expect(options).toMatchObject({ host: 'engine.example', port: '2376', protocol: 'https' });
      expect(String(options.ca)).toBe('ca.pem bytes');
      expect(String(options.cert)).toBe('cert.pem bytes');
      expect(String(options.key)).toBe('key.pem bytes');
    }
  });

  it('DOCKER_CERT_PATH unset: ~/.docker, as the docker CLI; a file missing there is named with the setting and the default', () => {
    expect(() => engineOptions(engine({ DOCKER_HOST: 'tcp://engine.example:2376', DOCKER_TLS_VERIFY: '1' }), home)).toThrow(new RegExp(`DOCKER_CERT_PATH is unset, so the docker CLI's default "${join(home, '.docker')}" is used, and its ca.pem`));
  });

  it('a wrong DOCKER_CERT_PATH, or one missing a file, is a ConfigError naming the setting and the file', async () => {
    const wrong = () => engineOptions(engine({ DOCKER_HOST: 'tcp://engine.example:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: join(home, 'nowhere') }), home);
    expect(wrong).toThrow(ConfigError);
    expect(wrong).toThrow(`DOCKER_CERT_PATH is "${join(home, 'nowhere')}", and its ca.pem (the CA that signed the engine's certificate) cannot be read (ENOENT)`);
    const partial = join(home, 'partial');
    await mkdir(partial);
    await writeFile(join(partial, 'ca.pem'), 'ca');
    expect(() => engineOptions(engine({ DOCKER_HOST: 'tcp://engine.example:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: partial }), home)).toThrow('its cert.pem (this client\'s certificate)');
    // Set without TLS, docker-modem still reads it: named here, not as a bare ENOENT.
    expect(() => engineOptions(engine({ DOCKER_HOST: 'unix:///run/docker.sock', DOCKER_CERT_PATH: join(home, 'nowhere') }), home)).toThrow('DOCKER_CERT_PATH is');
  });

  it.each([
    ['ssh://, refused for the OpenSSH forward of the socket', 'ssh://ops@engine.example', /does not drive an engine over ssh:\/\/ itself.*ssh -nNT -L \/run\/cldpd\/engine\.sock:\/var\/run\/docker\.sock ops@engine\.example/],
    ['no port', 'tcp://engine.example', /the port given/],
    ['another scheme', 'http://engine.example:2375', /use unix:\/\/\/path\/to\/docker\.sock or tcp:\/\/host:port/],
  ])('%s', (_, host, message) => {
    expect(() => engineOptions(engine({ DOCKER_HOST: host }), home)).toThrow(message);
  });
});
