// A stand-in for the gateway's program (dist/gateway/gateway.mjs) in tests of its container
// and network: it reads its configuration as the real one does, listens on its port, says
// so on its output, and answers every connection with one line (and dies when told "crash").
import { createServer } from 'node:net';

const config = JSON.parse(process.env.CLDPD_GATEWAY ?? '{}');
const port = typeof config.port === 'number' ? config.port : 3128;
const server = createServer((socket) => {
  socket.on('error', () => undefined);
  // "crash": the process dies as a gateway with a fatal bug would.
  socket.once('data', (data) => {
    if (data.toString().startsWith('crash')) process.exit(3);
  });
  socket.write('stand-in gateway\n');
  setTimeout(() => socket.end(), 200);
});
server.listen(port, () => console.log(JSON.stringify({ event: 'listening', port })));
process.on('SIGTERM', () => process.exit(0));
