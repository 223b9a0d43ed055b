import type Docker from 'dockerode';
import { CldpdError } from './errors.js';
import type { GatewayHandle, GatewaySpec } from './runner.js';

/**
 * The egress gateways of one Docker engine (see Runner.openGateway): each run's internal
 * network, and the gateway container that is its only way out.
 */
export class DockerGateways {
  constructor(private readonly docker: Docker, private readonly ensureOutside: (name: string) => Promise<unknown>) {}

  async open(spec: GatewaySpec): Promise<GatewayHandle> {
    void this.docker; void this.ensureOutside; void spec;
    throw new CldpdError('ContainerFailed', 'egress gateways are not available on this engine yet');
  }

  async find(name: string): Promise<GatewayHandle | undefined> {
    void name;
    return undefined;
  }

  async close(name: string): Promise<void> {
    void name;
  }
}
