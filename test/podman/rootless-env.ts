import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { podmanHost } from './engine.js';

/**
 * Imported first by a test file that runs a Docker-backed suite on rootless Podman: points
 * DOCKER_HOST (which every `new Docker()` reads) at the rootless service. Without one (never
 * under CI, where that throws), at a socket no engine serves, so the suite skips.
 */
process.env.DOCKER_HOST = podmanHost('rootless') ?? `unix://${join(tmpdir(), 'cldpd-no-podman.sock')}`;
