import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { missingSubscriptions, missingSubscriptionsMessage } from '../../src/github/app-subscriptions.js';
import { APP_YML_URL, parseAppDefinition } from '../../src/setup/app-manifest.js';

describe('missingSubscriptions', () => {
  it('app events: an app registered before reviews and checks lacks those events and checks: read, and is told how to add them', async () => {
    const app = parseAppDefinition(await readFile(APP_YML_URL, 'utf8'));
    const missing = missingSubscriptions({ events: ['issues', 'issue_comment'], permissions: { issues: 'write', contents: 'write', pull_requests: 'write', metadata: 'read' } }, { events: app.defaultEvents, permissions: app.defaultPermissions });
    expect(missing).toEqual({ events: ['pull_request_review', 'pull_request_review_comment', 'check_suite'], permissions: ['checks: read'] });
    expect(missingSubscriptionsMessage(missing)).toContain('Permissions & events');
  });

  it('app events: write covers read, read does not cover write; an app with everything lacks nothing', () => {
    const wanted = { events: ['issues'], permissions: { checks: 'read', issues: 'write' } };
    expect(missingSubscriptions({ events: ['issues'], permissions: { checks: 'write', issues: 'read' } }, wanted)).toEqual({ events: [], permissions: ['issues: write'] });
    expect(missingSubscriptionsMessage(missingSubscriptions({ events: ['issues'], permissions: { checks: 'read', issues: 'write' } }, wanted))).toBeUndefined();
    expect(missingSubscriptions({}, wanted).events).toEqual(['issues']);
  });
});
