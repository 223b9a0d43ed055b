// The webhook bench's references, each in a process of its own like `cldpd serve`, printing
// its port once listening:
//   bare   a Node HTTP server answering 202 to everything: the machine's own limit
//   floor  @octokit/webhooks' signature check and routing, then one BullMQ add with the
//          intake job's options: the least any server that acknowledges only durably
//          queued deliveries has to do
import { createServer } from 'node:http';

const [kind, secret, redisUrl, queueName] = process.argv.slice(2);
let handle;
if (kind === 'bare') {
  handle = (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(202);
      res.end();
    });
  };
} else {
  const { Webhooks, createNodeMiddleware } = await import('@octokit/webhooks');
  const { Queue } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const queue = new Queue(queueName, { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }) });
  const webhooks = new Webhooks({ secret });
  webhooks.on('issues.labeled', async ({ id, payload }) => {
    await queue.add('intake', { id, payload }, { jobId: `delivery-${id}`, attempts: 12, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: { age: 86400, count: 50000 }, removeOnFail: { age: 7 * 86400 } });
  });
  const middleware = createNodeMiddleware(webhooks, { path: '/api/github/webhooks', log: { debug() {}, info() {}, warn() {}, error: console.error } });
  handle = (req, res) => middleware(req, res);
}
const server = createServer(handle);
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
