// An attach cut mid-run on rootless Podman: the output follows from Podman's container log.
import './rootless-env.js';
import '../integration/attach-end.test.js';
