import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
type Loader = (request: string, parent: unknown, isMain: boolean) => unknown;
const Module = require('node:module') as { _load: Loader };

/**
 * dockerode loads ssh2 (for `ssh://` engines) and gRPC (for BuildKit sessions) the moment it
 * is imported: about 90 ms of every terminal command's start-up, for features cldpd uses
 * only when DOCKER_HOST is `ssh://` (and never, for gRPC). This hands dockerode stand-ins
 * that load the real module on first use, so nothing changes except when the cost is paid.
 * Call once, before dockerode is imported. Only the composition root calls it.
 */
export function deferHeavyModules(): void {
  const original = Module._load;
  const deferred = new Set(['ssh2', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs']);
  Module._load = function load(this: unknown, request, parent, isMain) {
    if (!deferred.has(request)) return original.call(this, request, parent, isMain);
    let real: Record<string | symbol, unknown> | undefined;
    const actual = (): Record<string | symbol, unknown> => (real ??= original.call(this, request, parent, isMain) as Record<string | symbol, unknown>);
    return new Proxy({}, {
      get(_, property) {
        // docker-modem reads ssh2's Client when it loads; constructing it is what needs ssh2.
        if (request === 'ssh2' && property === 'Client') {
          return class LazyClient {
            constructor(...args: unknown[]) {
              const Client = actual().Client as new (...a: unknown[]) => object;
              return new Client(...args);
            }
          };
        }
        return actual()[property];
      },
      has: (_, property) => property in actual(),
    });
  } as Loader;
}
