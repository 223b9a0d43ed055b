import { describe, expect, it } from 'vitest';
import { parseIssueUrl, resolvePodConfig, validatePodJson, type Pod } from '../../src/core/index.js';
import { RELEASE_FILE, holdCommand, setupSteps } from '../../src/core/setup-steps.js';

function pod(json: object): Pod {
  const checked = validatePodJson(json);
  if (!checked.ok) throw new Error(checked.problems.join());
  return { name: 'web', dir: '/p/web', dockerfile: '/p/web/Dockerfile', template: undefined, config: resolvePodConfig('web', checked.value, '/h') };
}

const issue = parseIssueUrl('https://github.com/acme/web/issues/7');
const url = 'https://github.com/acme/web.git';

describe('setupSteps', () => {
  it.each<[string, object, { issue?: boolean; resume?: boolean }, Array<[string, string | undefined]>]>([
    ['nothing asked', {}, {}, []],
    ['a checkout', { checkout: true, github: { contents: 'read' } }, {}, [['cloning acme/web', undefined]]],
    ['a resume fetches', { checkout: true, github: { contents: 'write' } }, { resume: true }, [['fetching acme/web', undefined]]],
    ['no issue, nothing to check out', { checkout: true, github: { contents: 'read' } }, { issue: false }, []],
    ['steps as the user and as root, after the checkout', { checkout: true, github: { contents: 'read' }, setup: [['npm', 'ci'], { run: ['apt-get', 'install', 'jq'], user: 'root' }] }, {}, [['cloning acme/web', undefined], ['npm ci', undefined], ['apt-get install jq', '0']]],
    ['a new container of a resume runs the steps again', { setup: [['npm', 'ci']] }, { resume: true }, [['npm ci', undefined]]],
  ])('%s', (_, json, input, expected) => {
    const steps = setupSteps(pod(json), { issue: input.issue === false ? undefined : issue, cloneUrl: url, workdir: '/workspace', resume: input.resume ?? false });
    expect(steps.map((s) => [s.name, s.user])).toEqual(expected);
  });

  it('clones into the workdir from the URL, onto the issue\'s branch when it exists; nothing is passed through a shell but as arguments', () => {
    const [checkout] = setupSteps(pod({ checkout: true, github: { contents: 'read' } }), { issue, cloneUrl: 'https://x/$(rm -rf /)', workdir: '/w', resume: false });
    expect(checkout?.cmd.slice(0, 2)).toEqual(['sh', '-c']);
    expect(checkout?.cmd.slice(3)).toEqual(['cldpd-checkout', '/w', 'https://x/$(rm -rf /)', 'cldpd/issue-7']);
    expect(checkout?.cmd[2]).not.toContain('rm -rf');
  });
});

describe('holdCommand', () => {
  it('waits for the release file, then becomes the command with its arguments untouched', () => {
    expect(holdCommand(['claude', '-p', '$HOME; rm x'])).toEqual(['sh', '-c', `while [ ! -e ${RELEASE_FILE} ]; do sleep 0.2 2>/dev/null || sleep 1 || exit 127; done; exec "$@"`, 'cldpd-hold', 'claude', '-p', '$HOME; rm x']);
  });
});
