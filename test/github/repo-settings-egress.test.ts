import { describe, expect, it } from 'vitest';
import type { OctokitLike } from '../../src/github/comments-api.js';
import { MAX_REPO_EGRESS, parseRepoSettings, repoEgress, repoEgressSource } from '../../src/github/repo-settings.js';

describe('.github/cldpd.yml egress', () => {
  it('reads a list of hosts per pod, exact names, wildcards and ports, as written', () => {
    const settings = parseRepoSettings('egress:\n  web: [registry.npmjs.org, "*.pythonhosted.org", "github.com:443", "10.0.0.5:8080"]\n  docs: []\n');
    expect(repoEgress(settings, 'web')).toEqual(['registry.npmjs.org', '*.pythonhosted.org', 'github.com:443', '10.0.0.5:8080']);
    expect(repoEgress(settings, 'docs')).toEqual([]); // narrowed to what cldpd itself needs
    expect(repoEgress(settings, 'api')).toBeUndefined(); // not named: the pod's own list
    expect(repoEgress(parseRepoSettings(''), 'web')).toBeUndefined();
  });

  it('a pod named like a property of every object is no pod\'s list but its own', () => {
    const settings = parseRepoSettings('egress:\n  web: [a.example]\n');
    for (const pod of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) expect(repoEgress(settings, pod)).toBeUndefined();
    expect(repoEgress(parseRepoSettings('egress:\n  constructor: [a.example]\n'), 'constructor')).toEqual(['a.example']);
    expect(() => parseRepoSettings('egress:\n  __proto__: [a.example]\n')).toThrow('names no pod there can be');
  });

  it('block lists and a list in the YAML\'s other forms read the same', () => {
    expect(repoEgress(parseRepoSettings('egress:\n  web:\n    - registry.npmjs.org\n    - "*.pythonhosted.org"\n'), 'web')).toEqual(['registry.npmjs.org', '*.pythonhosted.org']);
  });

  it.each([
    ['egress: [a.example]', '"egress" must be a mapping of pod names to lists of hosts, like "egress: { web: [registry.npmjs.org'],
    ['egress: a.example', '"egress" must be a mapping of pod names to lists of hosts'],
    ['egress:\n  web: a.example', '"egress.web" must be a list of hosts, like'],
    ['egress:\n  web: { a: b }', '"egress.web" must be a list of hosts'],
    ['egress:\n  Web: [a.example]', '"egress.Web" names no pod there can be: a pod\'s name is lowercase letters'],
    ['egress:\n  "": [a.example]', '"egress." names no pod there can be'],
    ['egress:\n  web: ["bad host"]', '"egress.web[0]": "bad host" is not a host name (letters, digits, "-" and "." only, optionally "*." first and ":port" last)'],
    ['egress:\n  web: [ok.example, "*.com"]', '"egress.web[1]": "*.com" would allow a whole top-level domain'],
    ['egress:\n  web: ["a.*.example"]', '"egress.web[0]": "a.*.example": "*" may only start a name'],
    ['egress:\n  web: ["a.example:70000"]', '"egress.web[0]" has port 70000: a port is 1 to 65535'],
    ['egress:\n  web: [8080]', '"egress.web[0]" must be a host name like "registry.npmjs.org"'],
    ['egress:\n  web: [""]', '"egress.web[0]" must be a host name'],
    ['egress:\n  web: [[a.example]]', '"egress.web[0]" must be a host name'],
    ['egress:\n  web: [null]', '"egress.web[0]" must be a host name'],
    ['egress:\n  web: ["[x](javascript:alert(1))"]', '"egress.web[0]": "[x](javascript:alert(1))" is not a host name'],
    ['egress:\n  web:\n    - *.pythonhosted.org', 'must be in quotes'],
  ])('refuses %j, naming the key and what to write', (text, message) => {
    let thrown: Error | undefined;
    try {
      parseRepoSettings(text);
    } catch (err) {
      thrown = err as Error;
    }
    expect(thrown?.message).toContain(message);
    expect(thrown?.message.startsWith('.github/cldpd.yml')).toBe(true);
  });

  it(`takes at most ${MAX_REPO_EGRESS} hosts per pod, and says how to name many at once`, () => {
    const list = (n: number) => `egress:\n  web: [${Array.from({ length: n }, (_, i) => `h${i}.example`).join(', ')}]\n`;
    expect(repoEgress(parseRepoSettings(list(MAX_REPO_EGRESS)), 'web')).toHaveLength(MAX_REPO_EGRESS);
    expect(() => parseRepoSettings(list(MAX_REPO_EGRESS + 1))).toThrow(`"egress.web" lists ${MAX_REPO_EGRESS + 1} hosts; at most ${MAX_REPO_EGRESS} are allowed per pod: use "*.example.com"`);
  });

  it('is among the known keys an unknown one is told of', () => {
    expect(() => parseRepoSettings('egres: {}')).toThrow('(known: pods, limits, pullRequest, fixChecks, egress)');
  });
});

/** An Octokit that answers the contents read with `file` (YAML), or fails with `status` the first `failures` times. */
function octokit(file: string | undefined, failures: Array<number> = []): OctokitLike & { reads: number } {
  const o = {
    reads: 0,
    async request(route: string, params?: Record<string, unknown>) {
      o.reads++;
      expect(route).toBe('GET /repos/{owner}/{repo}/contents/{path}');
      expect(params).toMatchObject({ owner: 'acme', repo: 'web', path: '.github/cldpd.yml' });
      const status = failures.shift();
      if (status !== undefined) throw Object.assign(new Error(`HTTP ${status}`), { status });
      if (file === undefined) throw Object.assign(new Error('Not Found'), { status: 404 });
      return { data: { content: Buffer.from(file).toString('base64'), encoding: 'base64' } };
    },
  };
  return o;
}

const run = { issue: { installationId: 3, owner: 'acme', repo: 'web' }, pod: 'web' };

describe('repoEgressSource: what a worker reads before each run', () => {
  it('the run\'s pod\'s list from the file; none without the file or without the pod in it', async () => {
    expect(await repoEgressSource(async () => octokit('egress: { web: [a.example, "*.b.example"] }'))(run)).toEqual(['a.example', '*.b.example']);
    expect(await repoEgressSource(async () => octokit(undefined))(run)).toBeUndefined();
    expect(await repoEgressSource(async () => octokit('egress: { docs: [a.example] }'))(run)).toBeUndefined();
  });

  it('asks the installation the run\'s issue is in', async () => {
    const asked: number[] = [];
    await repoEgressSource(async (id) => {
      asked.push(id);
      return octokit(undefined);
    })(run);
    expect(asked).toEqual([3]);
  });

  it('reads again while GitHub fails, then reads the list', async () => {
    const o = octokit('egress: { web: [a.example] }', [502, 500]);
    expect(await repoEgressSource(async () => o, { retryMs: 1 })(run)).toEqual(['a.example']);
    expect(o.reads).toBe(3);
  });

  it('refuses the run when GitHub fails every read: the pod\'s wider list is never used in the repository\'s stead', async () => {
    const o = octokit('egress: { web: [a.example] }', [502, 502, 502]);
    await expect(repoEgressSource(async () => o, { retryMs: 1 })(run)).rejects.toThrow(/^The run did not start: cldpd could not read \.github\/cldpd\.yml, whose "egress" may narrow what this pod reaches \(GitHub answered 502: HTTP 502\)/);
    expect(o.reads).toBe(3);
  });

  it('refuses the run at once when the file is wrong, saying what is wrong', async () => {
    const o = octokit('egress: { web: ["bad host"] }');
    await expect(repoEgressSource(async () => o, { retryMs: 1 })(run)).rejects.toThrow('The run did not start: .github/cldpd.yml: "egress.web[0]": "bad host" is not a host name');
    expect(o.reads).toBe(1);
  });
});
