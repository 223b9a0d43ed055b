// The sessions suite on rootless Podman: the same tests as on Docker, with DOCKER_HOST at the
// rootless service (see rootless-env.ts); where Podman differs the suite says how.
import './rootless-env.js';
import '../integration/docker-session.test.js';
