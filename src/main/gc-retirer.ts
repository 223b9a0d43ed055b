import type { Config } from '../config.js';
import { issueKey, parseIssueUrl, type HostInventory } from '../core/index.js';
import type { IssueRetirer } from '../cli/run-cli.js';
import { issueStores } from '../queue/issue-stores.js';
import { retireIssue } from '../queue/retire.js';
import { SessionFeedStore } from '../queue/session-feed.js';
import { operatorRedis } from './operator-redis.js';

/**
 * What `cldpd gc` needs to remove an issue's sessions: the deployment's Redis, which says
 * whether and since when the issue is closed, and holds its keys and live feeds. Loaded
 * only by gc, and only when this machine has a Redis to ask.
 */
export async function gcRetirer(config: Config, inventory: HostInventory): Promise<IssueRetirer> {
  const { redis } = await operatorRedis(config);
  const state = issueStores(redis);
  const feed = new SessionFeedStore(redis, { maxEntries: config.live.maxEntries, keepSeconds: config.live.keepSeconds });
  return {
    retire: (issueUrl, closedBefore, dryRun) => retireIssue({ state, inventory, hostId: config.hostId, feed }, issueKey(parseIssueUrl(issueUrl)), issueUrl, { closedBefore }, { dryRun }),
    close: async () => {
      redis.disconnect();
    },
  };
}
