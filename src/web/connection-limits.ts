import type { Server } from 'node:http';
import { isIPv6, type Socket } from 'node:net';

/** Options of {@link limitConnections}. */
export interface ConnectionLimitsOptions {
  /** Connections one address (an IPv6 address by its /64) may hold open; default 32. */
  readonly perAddress?: number;
  /** Connections open in all; default 512. */
  readonly total?: number;
  /** Connections open in all from which `perAddress` applies; default half of `total`. */
  readonly pressure?: number;
}

/** What {@link limitConnections} keeps count of, for logs and tests. */
export interface ConnectionCounts {
  /** Connections open now. */
  readonly open: number;
  /** Connections closed to make room for a new one, since the start. */
  readonly evicted: number;
  /** New connections closed at once because every held one was answering a request, since the start. */
  readonly refused: number;
}

/**
 * The address a connection is counted under: an IPv4 address as it is (also when Node shows
 * it IPv4-mapped), an IPv6 address by its first four groups, since one host holds a whole /64.
 */
export function addressKey(remote: string | undefined): string {
  if (!remote) return '';
  if (remote.startsWith('::ffff:') && remote.includes('.')) return remote.slice(7);
  if (!isIPv6(remote)) return remote;
  const [head = '', tail = ''] = remote.split('::');
  const groups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const full = remote.includes('::') ? [...groups, ...Array<string>(8 - groups.length - tailGroups.length).fill('0'), ...tailGroups] : groups;
  return `${full.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '').toLowerCase()).join(':')}::/64`;
}

/**
 * Bounds the connections `server` holds, per address and in all, so that slow or idle
 * connections cannot turn a request away. A connection counts as busy from the moment its
 * request head is complete until its response is done, and as idle otherwise (still sending
 * its head, or kept alive between requests). A new connection over either limit closes the
 * oldest idle connection of that address (or, over the total, of any address) to make room;
 * only when every one of them is busy is the new one closed at once. So a sender of slow
 * heads holds nothing a prompt request needs, and requests answered promptly (webhook
 * deliveries) find room whatever one address does. `perAddress` applies once the server
 * holds `pressure` connections (half the total by default): until then one address may hold
 * more, as a reverse proxy or a burst of deliveries from one of GitHub's addresses does, and
 * once it applies, what one address holds busy is bounded by it, so the other half stays for
 * the others. Replaces `server.maxConnections`; call once, before the server listens.
 */
export function limitConnections(server: Server, options: ConnectionLimitsOptions = {}): ConnectionCounts {
  const perAddress = options.perAddress ?? 32;
  const total = options.total ?? 512;
  const pressure = options.pressure ?? Math.floor(total / 2);
  /** Every open connection and how many of its requests are being answered; oldest first. */
  const open = new Map<Socket, { address: string; busy: number }>();
  const byAddress = new Map<string, Set<Socket>>();
  const counts = { open: 0, evicted: 0, refused: 0 };

  const forget = (socket: Socket): void => {
    const held = open.get(socket);
    if (!held) return;
    open.delete(socket);
    const mine = byAddress.get(held.address);
    mine?.delete(socket);
    if (mine?.size === 0) byAddress.delete(held.address);
    counts.open = open.size;
  };
  /** Closes the oldest idle connection among `sockets`; false when all are busy. */
  const evictFrom = (sockets: Iterable<Socket>): boolean => {
    for (const socket of sockets) {
      if (open.get(socket)?.busy !== 0) continue;
      forget(socket);
      socket.destroy();
      counts.evicted += 1;
      return true;
    }
    return false;
  };

  server.on('connection', (socket: Socket) => {
    const address = addressKey(socket.remoteAddress);
    const mine = byAddress.get(address);
    const overOwn = mine !== undefined && mine.size >= perAddress && open.size >= pressure;
    if ((overOwn && !evictFrom(mine)) || (open.size >= total && !evictFrom(open.keys()))) {
      counts.refused += 1;
      socket.destroy();
      return;
    }
    open.set(socket, { address, busy: 0 });
    byAddress.set(address, (byAddress.get(address) ?? new Set()).add(socket));
    counts.open = open.size;
    socket.once('close', () => forget(socket));
  });
  server.on('request', (req, res) => {
    const held = open.get(req.socket);
    if (!held) return;
    held.busy += 1;
    res.once('close', () => {
      held.busy -= 1;
    });
  });
  return counts;
}
