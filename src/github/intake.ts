import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { MAX_PROMPT_BYTES, SESSION_SUFFIX_HEX, assertPodName, isCldpdError, keepStart } from '../core/index.js';
import { issueKeyOf, type IntakeJob, type IssueRef, type RetireJob, type RunCommand, type Trigger } from '../queue/contract.js';
import type { IntakeStores } from '../queue/issue-stores.js';
import type { Producer } from '../queue/producer.js';
import { runsAhead } from '../queue/queue-position.js';
import { dayEnds, mergeLimits, type LimitHit, type RepoLimits } from '../queue/limits-policy.js';
import type { UsageLimits } from '../queue/usage-counters.js';
import { COMMAND_HELP, commandTrigger } from './commands.js';
import type { CommentsApi, OctokitLike } from './comments-api.js';
import { buildIssuePrompt, buildResumePrompt } from './issue-prompt.js';
import { PullIntake } from './pull-intake.js';
import { onSessionIssue } from './pull-sessions.js';
import { mayTrigger, roleOf, isBot, type PermissionAnswer } from './permissions.js';
import { allowsPod, readRepoSettings, type RepoSettings } from './repo-settings.js';
import { RESUME_WAITS, renderStatusComment, statusMarker, parseStatusMarker } from './status-comment.js';
import { statusOf } from './status-of.js';
import { utcMinute } from '../queue/run-view.js';

/** What the intake step needs. */
export interface IntakeOptions {
  readonly state: IntakeStores;
  readonly producer: Producer;
  readonly comments: CommentsApi;
  readonly octokitFor: (installationId: number) => Promise<OctokitLike>;
  /** The app's own login (`<slug>[bot]`): only comments it wrote are ever taken for its status comments. */
  readonly appLogin: () => Promise<string>;
  readonly logger: Logger;
  /** Daily run and spending limits: where they are counted, and the installation's (a repository's `.github/cldpd.yml` may lower them). None when absent. */
  readonly limits?: { readonly usage: UsageLimits; readonly defaults: RepoLimits };
  /** How long after an issue is closed its sessions are removed (CLDPD_RETENTION_DAYS); never when absent. */
  readonly retentionMs?: number;
  readonly now?: () => number;
}

function money(usd: number): string {
  return `$${usd.toFixed(2)}`;
}

function inWords(ms: number): string {
  const minutes = Math.max(1, Math.ceil(ms / 60_000));
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The reply to a trigger over a limit: which limit, the figures, when it resets; nothing was started. */
export function limitReply(hit: LimitHit, login: string, now: number): string {
  const who = hit.scope === 'repository' ? 'This repository' : 'You';
  const whose = hit.scope === 'repository' ? 'its' : 'your';
  const where = hit.scope === 'repository' ? '' : ' in this repository';
  const resets = `It resets at 00:00 UTC, in ${inWords(dayEnds(now) - now)}.`;
  const text = hit.limit === 'runsPerDay'
    ? `${who} reached ${whose} limit of ${hit.value} run${hit.value === 1 ? '' : 's'} a day${where} (${hit.used} today, UTC). ${resets}`
    : hit.limit === 'spendPerDayUsd'
      ? `${who} reached ${whose} spending limit of ${money(hit.value)} a day${where}: runs have spent ${money(hit.used)} today (UTC). ${resets}`
      : `${who} ${hit.scope === 'repository' ? 'has' : 'have'} ${hit.used} session${hit.used === 1 ? '' : 's'} running or queued${where}, ${whose} limit at once is ${hit.value}. It frees up when one of them ends.`;
  return `@${login}, ${text.charAt(0).toLowerCase()}${text.slice(1)} Nothing was started. The limits are this repository's \`.github/cldpd.yml\` (\`limits\`) and the installation's (\`CLDPD_LIMITS\`), the lower of the two.`;
}

/** A refusal is posted once per person and issue in this time; later ones are only logged. */
const REFUSAL_QUIET_SECONDS = 24 * 3600;
/** Refusals posted per installation and hour at most, whoever asks: strangers cannot spend the write budget. */
const REFUSALS_PER_HOUR = 20;
/** How long an answer without write access is reused before the API is asked again. */
const REFUSED_CACHE_MS = 5 * 60_000;

/**
 * A session id that is the same on every retry of one delivery: `<pod>-<16 hex>` of the delivery
 * id (64 bits). `attempt` > 0 gives the delivery's next candidates, for when another issue holds one.
 */
export function sessionIdFor(pod: string, deliveryId: string, attempt = 0): string {
  const seed = attempt === 0 ? deliveryId : `${deliveryId}\n${attempt}`;
  return `${pod}-${createHash('sha256').update(seed).digest('hex').slice(0, SESSION_SUFFIX_HEX)}`;
}

/** Candidates of one delivery tried before its start is given up (each taken by another issue). */
const SESSION_ID_ATTEMPTS = 8;

/** The removal of a closed issue's sessions, as its worker receives it. */
function retireJob(job: IntakeJob, issueKey: string, closedAt: number, retentionMs: number): RetireJob {
  const { installationId, owner, repo, number, url } = job.issue;
  return { kind: 'retire', issueKey, issueUrl: url, closedAt, retentionMs, issue: { installationId, owner, repo, number, url } };
}

/**
 * The intake step of a webhook delivery, off the request path: checks the sender's
 * permission with the API, reads the repository's settings, acknowledges on the issue and
 * queues the run (or the stop) for the host that owns the issue. Every side effect is
 * idempotent, so a retried intake job neither double-posts nor double-queues.
 */
export class Intake {
  /** Permission answers without write access, per installation, repository and login. */
  private readonly refused = new Map<string, { answer: PermissionAnswer; until: number }>();

  /** Reviews and failing checks on sessions' pull requests, which end in this intake's own steps. */
  private readonly pulls: PullIntake;

  constructor(private readonly options: IntakeOptions) {
    this.pulls = new PullIntake({ ...options, steps: {
      permission: (issue, login) => this.permission(issue, login),
      settings: (issue) => this.settings(issue),
      handle: (job) => this.handle(job),
      resume: (job, message, key, note) => this.resume(job, message, key, note),
    } });
  }

  /**
   * Handles a delivery once: a delivery handled before (the same signed body, whatever its
   * delivery id says) is a replay or a late redelivery and does nothing.
   */
  async process(job: IntakeJob): Promise<string> {
    if (await this.options.state.handled(job.deliveryId)) return 'ignored: handled before';
    const result = await this.handle(job);
    await this.options.state.handled(job.deliveryId, true);
    return result;
  }

  private async handle(job: IntakeJob): Promise<string> {
    const { trigger, issue, sender } = job;
    if (trigger.kind === 'comment') {
      // Before the permission check: a comment without a command costs no API read.
      const command = commandTrigger(trigger.commentBody, trigger.commentId);
      return command ? this.handle({ ...job, trigger: command }) : 'ignored: no command';
    }
    if (job.pull && job.issue.number === job.pull.number) {
      // About a pull request: it acts on the session whose pull request it is, or on nothing.
      const moved = await onSessionIssue(job, { state: this.options.state, octokit: () => this.options.octokitFor(job.issue.installationId) });
      return moved ? this.handle(moved) : 'ignored: not a session\'s pull request';
    }
    if (trigger.kind === 'review' || trigger.kind === 'review-comment') return this.pulls.review(job, trigger);
    if (trigger.kind === 'checks') return this.pulls.fixChecks(job, trigger);
    if (trigger.kind === 'transferred') {
      // GitHub moved the issue (its sender needed write access on both sides): its session,
      // queue and running run stay under the old key, reached from the new place, and stay
      // the original repository's to command.
      const { state } = this.options;
      await state.transferredFrom(trigger.to, (await state.transferredFrom(issue)) ?? { owner: issue.owner, repo: issue.repo });
      await state.alias(issueKeyOf(trigger.to), await this.options.state.keyFor(issue));
      return 'transferred';
    }
    if (trigger.kind === 'closed' || trigger.kind === 'reopened') return this.closedOrReopened(job, trigger);
    if (isBot(sender)) return 'ignored: bot';
    const role = roleOf(await this.permission(issue, sender.login));
    if (!mayTrigger(sender, role)) {
      // Said once per person and issue, and within a small hourly allowance per
      // installation: a stranger's comments must not spend the writes every run shares.
      const key = await this.options.state.keyFor(issue);
      if (await this.options.state.allowRefusal(job.deliveryId, issue.installationId, key, sender.login, { quietSeconds: REFUSAL_QUIET_SECONDS, perHour: REFUSALS_PER_HOUR })) {
        await this.replyOnce(job, `@${sender.login}, only people with write access to this repository can ask cldpd to work${role === 'none' ? '' : ` (you have ${role} access)`}. Nothing was started.`);
      } else {
        this.options.logger.info({ issue: key, sender: sender.login, role }, 'refused a request quietly (this person was answered already, or the hourly allowance of refusals is spent)');
      }
      return `refused: ${role}`;
    }
    // A session started in another repository (the issue moved here since) is theirs too:
    // write access here alone does not reach its checkout and volumes.
    const origin = await this.options.state.transferredFrom(issue);
    if (origin && `${origin.owner}/${origin.repo}`.toLowerCase() !== `${issue.owner}/${issue.repo}`.toLowerCase()
      && !mayTrigger(sender, roleOf(await this.permission({ ...issue, owner: origin.owner, repo: origin.repo }, sender.login)))) {
      await this.replyOnce(job, `@${sender.login}, this issue's cldpd session was started in ${origin.owner}/${origin.repo} before the issue moved here; only people with write access there can ask cldpd to work on it. Nothing was started.`);
      return 'refused: origin';
    }
    const key = await this.options.state.keyFor(issue);
    switch (trigger.kind) {
      case 'label':
        return this.closedRetention(job, key, await this.start(job, trigger.pod, key));
      case 'resume': {
        const on = job.pull ? { number: job.pull.number, head: job.pull.head } : undefined;
        const message = trigger.framed ? trigger.prompt : buildResumePrompt({ author: sender.login, instruction: trigger.prompt, ...(on ? { on } : {}) });
        return this.closedRetention(job, key, await this.resume(job, message, key, trigger.note));
      }
      case 'stop':
        return this.stop(job, key);
      case 'status':
        return this.status(job, key);
      case 'invalid':
        await this.replyOnce(job, `${trigger.problem}\n\n${COMMAND_HELP}`);
        return 'invalid command';
    }
  }

  /**
   * The sender's permission on the repository, from the API. An answer without write access
   * is kept for a few minutes (a stranger's comments then cost no API reads); one with it
   * never is, so a permission taken away counts at once.
   */
  private async permission(issue: IssueRef, login: string): Promise<PermissionAnswer> {
    const cacheKey = `${issue.installationId}/${issue.owner}/${issue.repo}/${login}`.toLowerCase();
    const cached = this.refused.get(cacheKey);
    if (cached && cached.until > Date.now()) return cached.answer;
    const octokit = await this.options.octokitFor(issue.installationId);
    let answer: PermissionAnswer;
    try {
      const { data } = await octokit.request('GET /repos/{owner}/{repo}/collaborators/{username}/permission', { owner: issue.owner, repo: issue.repo, username: login });
      answer = data as PermissionAnswer;
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      answer = { permission: 'none' }; // not a collaborator
    }
    if (!mayTrigger({ login, type: 'User' }, roleOf(answer))) {
      if (this.refused.size >= 10_000) this.refused.clear();
      this.refused.set(cacheKey, { answer, until: Date.now() + REFUSED_CACHE_MS });
    }
    return answer;
  }

  private async settings(issue: IssueRef): Promise<RepoSettings> {
    return readRepoSettings(await this.options.octokitFor(issue.installationId), issue);
  }

  /** The repository's settings; undefined when they cannot be read, which is then said on the issue. */
  private async settingsOrReply(job: IntakeJob): Promise<RepoSettings | undefined> {
    try {
      return await this.settings(job.issue);
    } catch (err) {
      if (statusOf(err) !== undefined) throw err; // the API failed: retry the intake
      await this.replyOnce(job, `cldpd cannot read this repository's settings: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Admits the run against the repository's limits (see UsageLimits); true when it is over one, which is then said on the issue. */
  private async overLimit(job: IntakeJob, key: string, settings: RepoSettings): Promise<boolean> {
    const limits = this.options.limits;
    if (!limits) return false;
    const hit = await limits.usage.admit(job.deliveryId, `${job.issue.owner}/${job.issue.repo}`, key, job.sender.login, mergeLimits(limits.defaults, settings.limits));
    if (!hit) return false;
    this.options.logger.info({ issue: key, sender: job.sender.login, ...hit }, 'refused a run over a limit');
    await this.replyOnce(job, limitReply(hit, job.sender.login, (this.options.now ?? Date.now)()));
    return true;
  }

  /** `instruction`: a resume's message, when the session it meant to continue was on a forgotten host. */
  private async start(job: IntakeJob, pod: string, key: string, instruction?: string): Promise<string> {
    try {
      assertPodName(pod);
    } catch (err) {
      await this.replyOnce(job, `The label \`cldpd:${keepStart(pod, 80)}\` does not name a usable pod: ${isCldpdError(err) ? err.message : String(err)}`);
      return 'invalid pod name';
    }
    const settings = await this.settingsOrReply(job);
    if (!settings) return 'bad settings';
    if (!allowsPod(settings, pod)) {
      await this.replyOnce(job, `The pod \`${pod}\` is not enabled for this repository: \`.github/cldpd.yml\` allows ${settings.pods?.length ? settings.pods.map((p) => `\`${p}\``).join(', ') : 'no pods'}.`);
      return 'pod not allowed';
    }
    if (await this.overLimit(job, key, settings)) return 'over a limit';
    // Asked on a pull request (a forgotten host's session starting afresh): the issue's own words.
    const { title, body } = job.pull ? await this.issueText(job.issue) : job.issue;
    const issuePrompt = buildIssuePrompt({ title, body });
    // A resume of a session left on a forgotten host starts afresh, its instruction after the issue.
    const prompt = instruction === undefined ? issuePrompt : `${issuePrompt}\n\n${instruction}`;
    const { forgotten } = await this.options.state.get(key);
    const note = forgotten ? `The issue's earlier session${forgotten.sessionId ? ` \`${forgotten.sessionId}\`` : ''} was on host \`${forgotten.hostId}\`, which an operator released on ${utcMinute(forgotten.at)} UTC (\`cldpd hosts forget\`): its state stayed there, and this session starts afresh.` : undefined;
    const sessionId = await this.claimSessionId(pod, job.deliveryId, key);
    const command = await this.queueRun(job, key, { kind: 'start', pod, sessionId, prompt, ...(note ? { note } : {}) });
    await this.options.limits?.usage.queued(`${job.issue.owner}/${job.issue.repo}`, key, job.sender.login);
    if (forgotten) await this.options.state.clearForgotten(key);
    return `queued start #${command.seq}`;
  }

  /**
   * The new session's id: the delivery's first candidate (see sessionIdFor) that no other issue
   * holds, claimed for this one in Redis, so a retried intake finds the same one again.
   */
  private async claimSessionId(pod: string, deliveryId: string, issueKey: string): Promise<string> {
    for (let attempt = 0; attempt < SESSION_ID_ATTEMPTS; attempt++) {
      const sessionId = sessionIdFor(pod, deliveryId, attempt);
      if (await this.options.state.claimSession(sessionId, issueKey)) return sessionId;
      this.options.logger.warn({ session: sessionId, issue: issueKey }, 'another issue holds this session id; trying the next');
    }
    throw new Error(`${SESSION_ID_ATTEMPTS} session ids for delivery ${deliveryId} are all held by other issues; this cannot happen by chance: look for a tampered session-issues hash in Redis.`);
  }

  /** `message`: what the agent receives (a comment's instruction framed, a review, failing checks); `note`: a line its status comment keeps. */
  private async resume(job: IntakeJob, message: string, key: string, note?: string): Promise<string> {
    const issue = await this.options.state.get(key);
    if (!issue.sessionId && issue.forgotten && issue.pod) {
      // Its session stayed on a host an operator forgot: a new one starts on a live host (the
      // status comment says why), with this instruction after the issue.
      const started = await this.start(job, issue.pod, key, message);
      return started.startsWith('queued start') ? `${started} (its session was on a forgotten host)` : started;
    }
    if (!issue.sessionId || !issue.pod) {
      await this.replyOnce(job, 'This issue has no cldpd session yet. Add the label `cldpd:<pod>` to start one; `/cldpd resume` continues it afterwards.');
      return 'no session';
    }
    const full = message;
    const bytes = Buffer.byteLength(full);
    if (bytes > MAX_PROMPT_BYTES) {
      await this.replyOnce(job, `This instruction is ${bytes} bytes; cldpd passes at most ${MAX_PROMPT_BYTES} bytes to the agent. Nothing was queued: shorten it, or put the details in a file in the repository and point the agent at it.`);
      return 'resume too long';
    }
    if (this.options.limits) {
      const settings = await this.settingsOrReply(job);
      if (!settings) return 'bad settings';
      if (await this.overLimit(job, key, settings)) return 'over a limit';
    }
    const command = await this.queueRun(job, key, { kind: 'resume', pod: issue.pod, sessionId: issue.sessionId, prompt: full, ...(note ? { note } : {}) });
    await this.options.limits?.usage.queued(`${job.issue.owner}/${job.issue.repo}`, key, job.sender.login);
    if (issue.hostId) {
      // If the session's agent is running, its host gives it this as its next message;
      // otherwise the queued resume runs in its turn.
      await this.options.producer.control(issue.hostId, { kind: 'message', issueKey: key, sessionId: issue.sessionId, seq: command.seq, command });
    }
    return `queued resume #${command.seq}`;
  }

  /** `run.note` stays on its status comment; a resume waiting for a host not seen for a while says so on its queued comment. */
  private async queueRun(job: IntakeJob, key: string, run: Pick<RunCommand, 'kind' | 'pod' | 'sessionId' | 'prompt' | 'note'>): Promise<RunCommand> {
    const { state, producer, comments } = this.options;
    const seq = (await state.deliverySeq(job.deliveryId)) ?? (await state.deliverySeq(job.deliveryId, await state.nextSeq(key))) as number;
    const marker = statusMarker({ issueKey: key, seq });
    let commentId = await state.statusComment(key, seq);
    if (commentId === undefined) {
      // A retried intake may have posted before it died: look for our marker first.
      // Only comments the app wrote, since this delivery arrived: anyone can write a marker.
      const appLogin = await this.options.appLogin();
      const found = (await comments.list(askedOn(job), { since: new Date(job.receivedAt - 60_000) })).find((c) => {
        const m = parseStatusMarker(c.body);
        return c.author.login === appLogin && c.author.type === 'Bot' && m?.issueKey === key && m.seq === seq;
      });
      // Runs of this issue that will run first (the running one included), or else the issues
      // its pool gives a slot first (fair share); the worker keeps it up to date.
      const inIssue = runsAhead(await state.queueSnapshot(key));
      const ahead = inIssue > 0 ? inIssue : await producer.place({ issueKey: key, kind: run.kind, requestedBy: job.sender.login });
      const unseen = run.kind === 'resume' ? await this.unseenHost(key) : undefined;
      const said = run.note ?? unseen ?? (run.kind === 'resume' && inIssue > 0 ? RESUME_WAITS : undefined);
      const body = renderStatusComment({ pod: run.pod, sessionId: run.sessionId, run: run.kind === 'start' ? 1 : 0, command: run.kind, phase: 'queued', ...(ahead !== undefined ? { queuePosition: ahead } : {}), now: Date.now(), requestedBy: job.sender.login, ...(said ? { note: said } : {}) }, marker, (t) => t);
      const comment = found ?? (await comments.create(askedOn(job), body));
      if (!found && ahead !== undefined) await state.showPosition(key, seq, ahead);
      commentId = await state.statusComment(key, seq, comment.id);
      await state.set(key, { lastStatusUrl: comment.url, ...(job.pull ? { continuesOn: job.pull.url } : {}) });
    }
    if (run.kind === 'start') await state.set(key, { sessionId: run.sessionId, pod: run.pod });
    const command: RunCommand = {
      seq, issueKey: key, issue: { installationId: job.issue.installationId, owner: job.issue.owner, repo: job.issue.repo, number: job.issue.number, url: job.issue.url },
      requestedBy: job.sender.login, enqueuedAt: job.receivedAt, statusCommentId: commentId as number, ...run,
      ...(job.pull ? { reportOn: { number: job.pull.number, url: job.pull.url } } : {}),
    };
    await producer.run(command);
    return command;
  }

  /**
   * Stops what runs for the issue and cancels what is queued, up to the newest command. The
   * session named is the one running (a start queued behind it has the newest session id,
   * but not the container): the worker stops whatever runs for the issue at or below this seq.
   */
  private async stop(job: IntakeJob, key: string): Promise<string> {
    const { state, producer } = this.options;
    const issue = await state.get(key);
    const pending = await state.pending(key);
    if (!issue.sessionId && pending === 0) {
      await this.replyOnce(job, 'There is no cldpd session on this issue to stop.');
      return 'nothing to stop';
    }
    await state.markStopped(key, issue.seq);
    const running = issue.running > 0 && issue.runningCommand ? (JSON.parse(issue.runningCommand) as RunCommand) : undefined;
    const target = running?.sessionId ?? issue.sessionId;
    if (issue.hostId && target) {
      await producer.control(issue.hostId, { kind: 'stop', issueKey: key, sessionId: target, seq: issue.seq });
    }
    // A run waiting for the model provider's limit is cancelled now, not when it would have woken.
    if (pending > 0) await producer.drain(key, issue.hostId, `stop-${issue.seq}`);
    const queued = pending - (running ? 1 : 0);
    const what = running ? `Stopping session \`${running.sessionId}\` (run ${running.seq})` : 'Nothing is running';
    const cancelled = queued > 0 ? `${running ? ' and cancelling' : '; cancelling'} ${queued} queued run${queued > 1 ? 's' : ''}` : '';
    await this.replyOnce(job, `${what}${cancelled}. The status comment${running || queued > 1 ? 's' : ''} will show the outcome; \`/cldpd resume <prompt>\` continues the session later.`);
    return 'stopping';
  }

  private async status(job: IntakeJob, key: string): Promise<string> {
    const issue = await this.options.state.get(key);
    const pending = await this.options.state.pending(key);
    if (!issue.sessionId) {
      const forgotten = issue.forgotten ? `Its session${issue.forgotten.sessionId ? ` \`${issue.forgotten.sessionId}\`` : ''} was on host \`${issue.forgotten.hostId}\`, which an operator released on ${utcMinute(issue.forgotten.at)} UTC; a label or \`/cldpd resume\` starts afresh on a live host.` : undefined;
      await this.replyOnce(job, [forgotten ?? 'This issue has no cldpd session. Add the label `cldpd:<pod>` to start one.', ...(await this.usageLines(job))].join('\n'));
      return 'status: none';
    }
    const lines = [
      `**cldpd status:** session \`${issue.sessionId}\` (pod \`${issue.pod ?? '?'}\`${issue.hostId ? `, host \`${issue.hostId}\`` : ''})`,
      issue.running > 0 ? `- running: run ${issue.running}` : '- not running',
      pending > (issue.running > 0 ? 1 : 0) ? `- queued: ${pending - (issue.running > 0 ? 1 : 0)}` : '- nothing queued',
      await this.slotPlace(key, issue.running).then((place) => (place === undefined ? undefined : `- waiting for a run slot: ${place === 0 ? 'next' : `${place} ahead`} (repositories take turns, then people)`)),
      issue.lastState ? `- latest: ${issue.lastState}` : undefined,
      issue.lastStatusUrl ? `- [status comment](${issue.lastStatusUrl})` : undefined,
      issue.continuesOn ? `- the conversation continues on [the pull request](${issue.continuesOn}): \`/cldpd resume\` there, or a review that carries it` : undefined,
      await this.unseenHost(key).then((text) => (text ? `- ${text}` : undefined)),
      ...(await this.usageLines(job)),
    ].filter(Boolean);
    await this.replyOnce(job, lines.join('\n'));
    return 'status';
  }

  /** How many issues get a run slot before this one's next command; undefined when it runs or nothing of it is queued. */
  private async slotPlace(key: string, running: number): Promise<number | undefined> {
    if (running > 0) return undefined;
    const { state, producer } = this.options;
    const head = await state.head(key);
    // A run waiting for its provider's reset, or an issue drained now between two runs: no slot place.
    if (!head || (head.providerWait?.notBefore ?? 0) > Date.now() || (await state.draining(key))) return undefined;
    return producer.place(head);
  }

  /** Says that the issue's host has not been seen for a while, and since when; undefined while it is alive (or the issue has none). */
  private async unseenHost(key: string): Promise<string | undefined> {
    const { state } = this.options;
    const { hostId } = await state.get(key);
    if (!hostId || (await state.hostAlive(hostId))) return undefined;
    const seen = await state.lastSeen(hostId);
    return `Host \`${hostId}\`, where this issue's session is, has not been seen ${seen ? `since ${utcMinute(seen)} UTC` : 'for a while'}: its runs wait for it. If it is gone for good, an operator can release its issues with \`cldpd hosts forget ${hostId}\` (a new label then starts afresh elsewhere).`;
  }

  /**
   * A run asked for on a closed issue: the close is recorded (it may predate cldpd's work on
   * the issue, or its record may have been removed since) and its removal scheduled; the
   * removal then waits the retention period from the session's last use.
   */
  private async closedRetention(job: IntakeJob, key: string, result: string): Promise<string> {
    const { state, producer, retentionMs } = this.options;
    const closedAt = job.issue.closedAt;
    if (closedAt === undefined || retentionMs === undefined) return result;
    // Only when a run was queued: a refused or invalid request leaves nothing to remove.
    const issue = await state.get(key);
    if (issue.running === 0 && (await state.pending(key)) === 0) return result;
    if (!(await state.closed(key, closedAt))) return result;
    // Its own job: the close's may be running or kept under the close's id.
    await producer.retire(retireJob(job, key, closedAt, retentionMs), issue.hostId, closedAt + retentionMs, `run-${job.deliveryId.slice(0, 16)}`);
    return result;
  }

  /**
   * An issue closed: its sessions are removed after the retention period (see RunWorker's
   * retire), unless it is reopened first. An issue reopened: nothing of it is removed. Who
   * closed it does not matter (a bot may); an issue cldpd never worked on is left alone.
   */
  private async closedOrReopened(job: IntakeJob, trigger: Extract<IntakeJob['trigger'], { kind: 'closed' | 'reopened' }>): Promise<string> {
    const { state, producer, retentionMs } = this.options;
    const key = await state.keyFor(job.issue);
    const issue = await state.get(key);
    if (!issue.sessionId && issue.seq === 0 && issue.closedAt === undefined) return `${trigger.kind}: not an issue cldpd worked on`;
    if (trigger.kind === 'reopened') {
      await state.reopened(key, trigger.at);
      return 'reopened: nothing is removed';
    }
    if (retentionMs === undefined || !(await state.closed(key, trigger.at))) return 'closed: kept (reopened since, or no retention)';
    await producer.retire(retireJob(job, key, trigger.at, retentionMs), issue.hostId, trigger.at + retentionMs);
    return `closed: its sessions are removed after ${new Date(trigger.at + retentionMs).toISOString()}`;
  }

  /** Today's runs, spending and sessions against the limits, for the repository and the sender; none without limits. */
  private async usageLines(job: IntakeJob): Promise<string[]> {
    const limits = this.options.limits;
    if (!limits) return [];
    const settings = await this.settings(job.issue).catch(() => undefined);
    const applied = mergeLimits(limits.defaults, settings?.limits);
    const today = await limits.usage.today(`${job.issue.owner}/${job.issue.repo}`, job.sender.login);
    const of = (value: number | undefined, text: (v: number) => string): string => (value === undefined ? '' : ` of ${text(value)}`);
    const line = (who: string, usage: { runs: number; spendUsd: number; sessions: number }, l: typeof applied.repository): string =>
      `- today (UTC), ${who}: ${usage.runs} run${usage.runs === 1 ? '' : 's'}${of(l.runsPerDay, String)}, ${money(usage.spendUsd)} spent${of(l.spendPerDayUsd, money)}, ${usage.sessions} session${usage.sessions === 1 ? '' : 's'} running or queued${of(l.sessionsAtOnce, (v) => `${v} at once`)}`;
    return [line('this repository', today.repository, applied.repository), line(`@${job.sender.login}`, today.person, applied.perPerson)];
  }

  /** The issue's title and body, from the API. */
  private async issueText(issue: IssueRef): Promise<{ title: string; body: string | null }> {
    const octokit = await this.options.octokitFor(issue.installationId);
    const { data } = await octokit.request('GET /repos/{owner}/{repo}/issues/{issue_number}', { owner: issue.owner, repo: issue.repo, issue_number: issue.number });
    const found = data as { title?: unknown; body?: unknown };
    return { title: typeof found.title === 'string' ? found.title : `#${issue.number}`, body: typeof found.body === 'string' ? found.body : null };
  }

  /** Posts a reply for this delivery unless one was posted already (a retried intake stays quiet). */
  private async replyOnce(job: IntakeJob, text: string): Promise<void> {
    const { state, comments } = this.options;
    if (await state.replied(job.deliveryId)) return;
    await comments.create(askedOn(job), text);
    await state.replied(job.deliveryId, true);
  }
}

/** Where a delivery's replies and status comment go: the pull request it was asked on, or its issue. */
function askedOn(job: IntakeJob): IssueRef {
  return job.pull ? { ...job.issue, number: job.pull.number, url: job.pull.url } : job.issue;
}
