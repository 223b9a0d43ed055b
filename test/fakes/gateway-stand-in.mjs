// A stand-in for the gateway's program (dist/gateway/gateway.mjs) in tests of its container
// and network: it reads its configuration as the real one does, listens on its port, says
// so on its output, and answers every connection with one line.
import { createServer } from 'node:net';

const config = JSON.parse(process.env.CLDPD_GATEWAY ?? '{}');
const port = typeof config.port === 'number' ? config.port : 3128;
const server = createServer((socket) => {
  socket.on('error', () => undefined);
  socket.end('stand-in gateway\n');
});
server.listen(port, () => console.log(JSON.stringify({ event: 'listening', port })));
process.on('SIGTERM', () => process.exit(0));
