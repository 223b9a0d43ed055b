import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { buildContainerSpec, containerEnv, imageHome, persistedVolumes, volumeLabels } from './container-spec.js';
import { gatedEnv, gatewayModelUrl, gatewaySecretOf, modelRoute, modelUrlOf, openGate, withoutModelKeys, type Gate } from './egress.js';
import { CldpdError, messageOf } from './errors.js';
import { LABELS } from './labels.js';
import { loadPod, type Pod, type PodSource } from './pod.js';
import { issueVolumeKey, parseIssueUrl, type IssueAddress } from './issue-address.js';
import { buildStartPrompt, checkPromptSize, promptChannel, renderCommand, type PromptChannel } from './prompt.js';
import { recordEnd, recoverRun, type Recovery, type RunPlan } from './recovery.js';
import { holdCommand, setupSteps, type SetupStep } from './setup-steps.js';
import { rootProblem, runsAsRoot } from './claude-pod.js';
import { agentEnvOf, agentFilesOf, holdsConversation, podAgent } from './pod-agent.js';
import { agentNamed } from './agents/agents.js';
import { GitHubAccess, type RepoTokenSource } from './github-access.js';
import type { ContainerInfo, ImageInfo, Runner } from './runner.js';
import { Session, type Launched, type SessionOptions } from './session.js';
import { holdsSession, isTakeover } from './session-takeover.js';
import { SESSION_SUFFIX_HEX, isSessionId, type PersistedVolume, type SessionRecord, type SessionStore } from './session-store.js';

/** What the Dispatcher needs; the composition root builds the real ones. */
export interface DispatcherOptions {
  readonly runner: Runner;
  readonly pods: PodSource;
  readonly store: SessionStore;
  /** Names this Docker host in labels, so sessions can be found again after a restart. */
  readonly hostId: string;
  /** The host environment, read only for the pods' inheritEnv names. */
  readonly hostEnv: Readonly<Record<string, string | undefined>>;
  readonly logger?: Logger;
  /** Eight hex characters; random by default. */
  readonly newSuffix?: () => string;
  /** Bytes each run may write to its session's log (past it, output is counted, not kept); unbounded when absent. */
  readonly maxLogBytesPerRun?: number;
  /** Where gated runs' gateways reach the outside, and names they resolve to fixed addresses (see GatewaySpec). */
  readonly gateways?: { readonly outside?: string; readonly hosts?: Readonly<Record<string, string>> };
}

/** What to start a session on: an issue URL, a prompt, or both. */
export interface StartInput {
  readonly issueUrl?: string | undefined;
  readonly prompt?: string | undefined;
}

/** Options of {@link Dispatcher.start}. */
export interface StartOptions {
  /**
   * Use this id (`<pod>-<16 hex>`) instead of a random one: lets a retried job find its session
   * again, so a record of that id is taken over. Whoever chooses it keeps it unique (the queue
   * claims it in Redis for its issue).
   */
  readonly sessionId?: string;
  /**
   * Mints tokens for the issue's repository, for a pod whose pod.json asks for `github`
   * permissions. Without it such a pod runs with no token (a warning says so).
   */
  readonly github?: RepoTokenSource;
  /**
   * The repository's narrower egress list for this pod (`.github/cldpd.yml` `egress`), as
   * written there: the run reaches a host only when both the pod's list and this one allow
   * it. Never widens: entries the pod does not allow stay refused.
   */
  readonly egress?: readonly string[];
}

/** Options of {@link Dispatcher.resume}. */
export interface ResumeOptions {
  /** As {@link StartOptions.github}: each run gets a fresh token. */
  readonly github?: RepoTokenSource;
  /** As {@link StartOptions.egress}. */
  readonly egress?: readonly string[];
}

/**
 * How long a run may take from its image being ready to its container being created
 * (volumes made and given to the image's user, a GitHub token minted): past it, a start
 * marked in a record (see SessionRecord `startingUntil`) is taken for one whose process died.
 */
const LAUNCH_SECONDS = 600;

/** What {@link Dispatcher} creates a new container of a run from: a start's, or a resume's. */
interface ContainerPlan {
  readonly pod: Pod;
  readonly sessionId: string;
  readonly containerName: string;
  readonly run: number;
  readonly issueUrl: string | undefined;
  /** The agent's command, rendered with where its model requests go (known once its gateway is open); held while setup steps run. */
  readonly cmd: (modelUrl: string) => readonly string[];
  /** The pod's command it was rendered from: what a root user is checked against (see rootProblem). */
  readonly podCommand: readonly string[];
  /** Whether the agent takes its prompt on standard input. */
  readonly stdin: boolean;
  /** When the run was asked for: a stop asked for since means no container starts (see launching). */
  readonly since: number;
  /**
   * A resume's: the record is marked as starting from now (a start's was marked when it was
   * made), the setup steps know it, and the volumes are the record's already.
   */
  readonly resume: boolean;
  readonly github: RepoTokenSource | undefined;
  /** The repository's narrower egress list (see StartOptions.egress). */
  readonly egress: readonly string[] | undefined;
  /** The image to run, or throws saying why there is none. */
  readonly image: () => Promise<ImageInfo>;
  /** The persisted volumes to mount in that image. */
  readonly volumes: (image: ImageInfo) => readonly PersistedVolume[];
}

/** The Session option that carries a prompt on standard input; none for a prompt in argv. */
function promptOption(channel: PromptChannel, prompt: string): Pick<SessionOptions, 'prompt'> {
  return channel.kind === 'stream-json' ? { prompt: { text: prompt, channel } } : {};
}

/**
 * Starts, resumes and stops sessions. Stateless between calls: containers are found by their
 * `dev.cldpd.*` labels and what a session needs across runs is in the session store, so
 * any Dispatcher on the same host can pick a session up.
 */
export class Dispatcher {
  constructor(private readonly options: DispatcherOptions) {}

  /**
   * Starts a new session of `podName`: builds the pod's image, then runs its start command
   * with the template + issue + prompt. Resolves once the run has begun (the build is part of
   * the session's events). Throws `InvalidPodName`, `PodNotFound`, `InvalidPod` or
   * `InvalidInput` before anything is created.
   */
  async start(podName: string, input: StartInput, options: StartOptions = {}): Promise<Session> {
    const pod = await loadPod(this.options.pods, podName);
    const issue = input.issueUrl ? parseIssueUrl(input.issueUrl) : undefined;
    const channel = promptChannel(pod.config.command);
    const github = options.github && Object.keys(pod.config.github).length > 0 ? pod.config.github : undefined;
    const prompt = buildStartPrompt(pod.template, { issueUrl: issue?.url, prompt: input.prompt, github }, channel);
    const newSuffix = this.options.newSuffix ?? (() => randomBytes(SESSION_SUFFIX_HEX / 2).toString('hex'));
    const now = Date.now();
    const recordOf = (sessionId: string): SessionRecord => {
      if (!isSessionId(sessionId) || !sessionId.startsWith(`${pod.name}-`)) {
        throw new CldpdError('InvalidInput', `"${sessionId}" is not a session id for pod "${pod.name}" (${pod.name}-<${SESSION_SUFFIX_HEX} hex>).`);
      }
      return {
        id: sessionId, pod: pod.name, image: pod.config.image, imageId: '', hostId: this.options.hostId,
        containerName: `cldpd-${sessionId}`, createdAt: now, updatedAt: now, runs: 1, volumes: [], agent: pod.config.agent,
        startingUntil: now + (pod.config.buildTimeoutSeconds + LAUNCH_SECONDS) * 1000,
        ...(issue ? { issueUrl: issue.url } : {}),
      };
    };
    let record: SessionRecord;
    if (options.sessionId !== undefined) {
      record = recordOf(options.sessionId);
      await this.options.store.save(record);
    } else {
      // A random id another session of this host holds already is never reused: a fresh one instead.
      for (let attempt = 1; ; attempt++) {
        record = recordOf(`${pod.name}-${newSuffix()}`);
        if (await this.options.store.create(record)) break;
        this.options.logger?.warn({ session: record.id }, 'a new session id was taken already; choosing another');
        if (attempt >= 5) throw new CldpdError('InvalidInput', `Five new session ids for pod "${pod.name}" were all taken on this host (${record.id} last); check ${this.options.store.dir} for leftover sessions.`);
      }
    }
    const sessionId = record.id;
    const { containerName } = record;
    const values = { prompt, sessionId, issueUrl: issue?.url, ...limitValues(pod.config) };
    const cmd = (modelUrl: string): string[] => renderCommand(pod.config.command, { ...values, modelUrl });
    cmd(this.openModelUrl(pod, sessionId)); // refuses a command it cannot fill before anything is made

    return this.startRun(pod, record, 1, {
      ...promptOption(channel, prompt),
      build: {
        tag: pod.config.image,
        contextDir: pod.dir,
        buildArgs: pod.config.buildArgs,
        labels: { [LABELS.pod]: pod.name },
        timeoutSeconds: pod.config.buildTimeoutSeconds,
      },
      removeOnExit: true,
      launch: (imageId) => this.launchContainer({
        pod, sessionId, containerName, run: 1, issueUrl: issue?.url, cmd, podCommand: pod.config.command,
        stdin: channel.kind === 'stream-json', since: now, resume: false, github: options.github, egress: options.egress,
        image: async () => {
          const image = imageId ?? pod.config.image;
          const info = await this.options.runner.inspectImage(image);
          if (!info) throw new CldpdError('BuildFailed', `The image ${image} of pod "${pod.name}" is missing after its build.`);
          return info;
        },
        volumes: (info) => persistedVolumes(pod.config.persist, info, issue ? issueVolumeKey(pod.name, issue) : sessionId),
      }),
    });
  }

  /**
   * Continues session `sessionId` with `prompt`, using the pod's resume command:
   * in the running container (an exec) when it is still up, otherwise in a new container
   * from the session's image with its persisted volumes and the captured Claude session id.
   * Throws `SessionNotFound` when this host has no such session.
   */
  async resume(sessionId: string, prompt: string, options: ResumeOptions = {}): Promise<Session> {
    const record = await this.options.store.load(sessionId);
    const pod = await loadPod(this.options.pods, record.pod);
    const startedWith = agentNamed(record.agent);
    // A record that names no agent was written before agents had names: taken as it is.
    if (record.agent !== undefined && startedWith.name !== pod.config.agent) {
      throw new CldpdError('InvalidPod', `Session ${sessionId} was started with ${startedWith.title}, and pod "${pod.name}" now runs ${podAgent(pod).title}: one cannot continue the other's conversation. Start a new session (remove the label and add it again), or set the pod's "agent" back.`);
    }
    // A session whose agent kept no conversation (it never reported one, or dropped the one its
    // first run began: see startRun) begins one, as a start does, with the issue's start prompt.
    const fresh = record.claudeSessionId === undefined && continuesConversation(pod.config.resumeCommand);
    const command = fresh ? pod.config.command : pod.config.resumeCommand;
    const channel = promptChannel(command);
    const github = options.github && Object.keys(pod.config.github).length > 0 ? pod.config.github : undefined;
    const text = fresh ? buildStartPrompt(pod.template, { issueUrl: record.issueUrl, prompt, github }, channel) : checkPromptSize(prompt, channel);
    const containers = await this.containersOf(sessionId);
    this.refuseTakenOver(sessionId, containers);
    const running = containers.find((c) => c.state === 'running');
    if (running && holdsConversation(pod)) {
      // A second agent process on one conversation would write one transcript twice over.
      const how = channel.kind === 'stream-json' ? 'Its agent takes new instructions only through the process that started it' : `${podAgent(pod).title} takes no instructions while it runs`;
      throw new CldpdError('SessionBusy', `Session ${sessionId} is still running (container ${running.name}). ${how}; once it has finished, resume it again (or stop it with "cldpd stop ${sessionId}").`);
    }
    const values = { prompt: text, sessionId, claudeSessionId: record.claudeSessionId, issueUrl: record.issueUrl, ...limitValues(pod.config) };
    const cmd = (modelUrl: string): string[] => renderCommand(command, { ...values, modelUrl });
    cmd(this.openModelUrl(pod, sessionId));
    const run = record.runs + 1;
    await this.options.store.update(sessionId, { runs: run });

    if (running) {
      // Only for a pod's own commands that resume beside the running one (see holdsConversation).
      return this.startRun(pod, record, run, {
        removeOnExit: false,
        launch: async () => {
          const access = await this.githubAccess(pod, options.github);
          try {
            if (access) await this.options.runner.writeFiles(running.id, access.files());
            // A gated container's own process went out through its gateway without the key: so
            // does this one (a pod gated by its own list, or by its repository's).
            const gateway = await this.options.runner.findGateway(running.name);
            const own = { ...containerEnv(pod, this.options.hostEnv, sessionId), ...access?.env() };
            const secret = gateway ? gatewaySecretOf(await this.options.runner.containerEnv(running.id)) : undefined;
            const gated = gateway !== undefined || !pod.config.egress.open || record.egressNarrowed !== undefined;
            const agent = podAgent(pod);
            const env = gateway
              ? (secret ? gatedEnv(gateway, modelRoute(own, secret, agent.provider), own, agent) : gatedEnv(gateway, {}, withoutModelKeys(own, agent.provider), agent))
              : gated ? withoutModelKeys(own, agent.provider) : own;
            const modelUrl = gateway && secret ? gatewayModelUrl(gateway, secret) : this.openModelUrl(pod, sessionId);
            const handle = await this.options.runner.exec(running.id, cmd(modelUrl), { env, ...(pod.config.workdir ? { workdir: pod.config.workdir } : {}) });
            return { handle, containerName: running.name, exec: true, ...(access ? { access } : {}), ...(secret ? { secrets: [secret] } : {}) };
          } catch (err) {
            // The token may be in the running container's token file already, which its own run
            // reads: that one stays, the others go.
            await access?.close({ keepLive: true });
            throw err;
          }
        },
      });
    }
    // The name is the session's: an exited leftover must go before a new container can take it.
    for (const c of containers) await this.options.runner.remove(c.id);
    const asked = Date.now();
    return this.startRun(pod, record, run, {
      ...promptOption(channel, text),
      removeOnExit: true,
      launch: () => this.launchContainer({
        pod, sessionId, containerName: record.containerName, run, issueUrl: record.issueUrl, cmd, podCommand: command,
        stdin: channel.kind === 'stream-json', since: asked, resume: true, github: options.github, egress: options.egress,
        image: async () => {
          const info = record.imageId ? await this.options.runner.inspectImage(record.imageId) : undefined;
          if (!info) {
            throw new CldpdError('SessionNotFound', `The image of session ${sessionId} (${record.image}) is gone from this Docker host, so it cannot be resumed. Start a new session.`);
          }
          return info;
        },
        // A volume removed since (cldpd volumes rm) comes back empty, labelled and the user's,
        // not as Docker would make it on its own: unlabelled, root-owned, unknown to cldpd.
        volumes: () => record.volumes,
      }),
    });
  }

  /**
   * Creates and starts a new container for a run, a start's or a resume's (see launching):
   * finds its image and refuses a root user the pod does not allow; makes its persisted
   * volumes the image user's (a start's are then remembered in the record, with the image);
   * mints its repository token; builds its spec, holding the agent while setup steps run.
   * A token minted for a container that never started is revoked (see runWith).
   */
  private launchContainer(plan: ContainerPlan): Promise<Launched> {
    const { pod, sessionId, containerName, issueUrl, resume } = plan;
    const { hostId, hostEnv } = this.options;
    return this.launching(sessionId, plan.since, resume, async () => {
      const info = await plan.image();
      const problem = rootProblem(pod, info, [plan.podCommand]);
      if (problem) throw new CldpdError('InvalidPod', problem);
      const volumes = plan.volumes(info);
      await this.prepareVolumes(pod, info, volumes, { sessionId, pod: pod.name, hostId, issueUrl });
      if (!resume) await this.options.store.update(sessionId, { imageId: info.id, volumes });
      await this.options.store.update(sessionId, { egressNarrowed: plan.egress ? [...plan.egress] : undefined });
      const access = await this.githubAccess(pod, plan.github);
      return this.runWith(access, async () => {
        const setup = this.setupFor(pod, info, issueUrl ? parseIssueUrl(issueUrl) : undefined, access, resume);
        const gate = await this.openGate(pod, plan, access);
        try {
          const cmd = plan.cmd(gate?.modelUrl ?? this.openModelUrl(pod, sessionId));
          const spec = buildContainerSpec({
            pod, sessionId, containerName, image: info.id, cmd: setup.length > 0 ? holdCommand(cmd) : cmd, hostId,
            issueUrl, run: plan.run, volumes, hostEnv, stdin: plan.stdin,
            agentEnv: agentEnvOf(pod, containerEnv(pod, hostEnv, sessionId), volumes.map((v) => v.path), imageHome(info)), agentFiles: agentFilesOf(pod, containerEnv(pod, hostEnv, sessionId)),
            ...(access ? { access } : {}),
            ...(gate ? { egress: gate.egress } : {}),
          });
          await this.unlessStopped(sessionId, plan.since);
          // A person who attached since the resume looked (see SessionTakeover.attach) has the conversation.
          this.refuseTakenOver(sessionId, await this.containersOf(sessionId));
          return {
            handle: await this.options.runner.run(spec), containerName, exec: false, ...(access ? { access } : {}), setup,
            ...(gate ? { gateway: { name: containerName, containerId: gate.handle.containerId }, secrets: gate.secrets } : {}),
          };
        } catch (err) {
          // No container of this run uses the gateway: it goes (a container made and stopped above is removed by the session).
          if (gate && !(await this.containersOf(sessionId)).some((c) => c.name === containerName)) await this.options.runner.closeGateway(containerName).catch(() => undefined);
          throw err;
        }
      });
    });
  }

  /**
   * Runs `launch`, which prepares a run's volumes and creates its container, with the session
   * marked as starting in its record (from `since`; `mark`: marked here, else since the
   * record was made) until its container exists: a removal meanwhile (gc, retention,
   * \`cldpd volumes rm\`) finds the session in use and leaves its volumes and record alone,
   * and a stop meanwhile from another process, which finds no container to stop yet, is
   * found by the launch (see unlessStopped) or stops what it just created.
   */
  private async launching(sessionId: string, since: number, mark: boolean, launch: () => Promise<Launched>): Promise<Launched> {
    const { store, runner } = this.options;
    if (mark) await store.update(sessionId, { startingUntil: Date.now() + LAUNCH_SECONDS * 1000 });
    let launched: Launched;
    try {
      launched = await launch();
    } finally {
      await store.update(sessionId, { startingUntil: undefined }).catch(() => undefined);
    }
    // A stop asked for while the container was being created found none to stop.
    const record = await store.load(sessionId).catch(() => undefined);
    if (record && (record.stopAskedAt ?? 0) >= since) {
      const grace = await loadPod(this.options.pods, record.pod).then((p) => p.config.stopGraceSeconds, () => 10);
      await runner.stop(launched.handle.containerId, grace);
    }
    return launched;
  }

  /** Opens the run's egress gateway when its pod is gated (see openGate). */
  private openGate(pod: Pod, plan: ContainerPlan, access: GitHubAccess | undefined): Promise<Gate | undefined> {
    const { runner, hostId, hostEnv, gateways } = this.options;
    return openGate(runner, {
      pod, name: plan.containerName, sessionId: plan.sessionId, run: plan.run, hostId, hostEnv, gateways,
      githubUrls: [plan.issueUrl, access?.repository.cloneUrl], narrower: plan.egress,
    });
  }

  /** Where the pod's agent sends its model requests when no gateway holds its key (see modelUrlOf). */
  private openModelUrl(pod: Pod, sessionId: string): string {
    return modelUrlOf(containerEnv(pod, this.options.hostEnv, sessionId), podAgent(pod).provider);
  }

  /** Throws `Stopped` when a stop of the session was asked for since `since` (see launching); runWith then revokes the run's token. */
  private async unlessStopped(sessionId: string, since: number): Promise<void> {
    const record = await this.options.store.load(sessionId).catch(() => undefined);
    if ((record?.stopAskedAt ?? 0) < since) return;
    throw new CldpdError('Stopped', `Session ${sessionId} was stopped before its container started.`);
  }

  /** Throws `SessionBusy` when a person has the session (see holdsSession). */
  private refuseTakenOver(sessionId: string, containers: readonly ContainerInfo[]): void {
    const attached = containers.find((c) => holdsSession(c));
    if (!attached) return;
    throw new CldpdError('SessionBusy', `A person is attached to session ${sessionId} (container ${attached.name}, "cldpd attach"): the conversation is theirs until they leave. Resume it once they have, or end their terminal with "cldpd stop ${sessionId}".`);
  }

  /**
   * Whether a resume of the session must wait: a person is attached to it (see
   * SessionTakeover), or its container runs an agent whose conversation one process holds (see
   * holdsConversation): one that takes live input only the process that started it can reach,
   * or one that takes none while it runs. False for an unknown session (the resume then says
   * so); for a pod that resumes by exec, only while a person is attached.
   */
  async isBusy(sessionId: string): Promise<boolean> {
    const record = await this.options.store.load(sessionId).catch(() => undefined);
    if (!record) return false;
    const containers = await this.containersOf(sessionId);
    if (containers.some((c) => holdsSession(c))) return true;
    const pod = await loadPod(this.options.pods, record.pod).catch(() => undefined);
    if (!pod || !holdsConversation(pod)) return false;
    return containers.some((c) => c.state === 'running' && !isTakeover(c));
  }

  /**
   * Finds where the session's latest run got to after the process that ran it went away,
   * and continues it when its container is still there (see recoverRun). Never starts a
   * container. Throws `SessionNotFound` when this host has no such session.
   */
  recover(sessionId: string, options: ResumeOptions = {}): Promise<Recovery> {
    const { runner, store, pods, logger } = this.options;
    return recoverRun({
      runner, store, pods, ...(logger ? { logger } : {}),
      startRun: (pod, record, run, plan) => this.startRun(pod, record, run, plan),
      githubAccess: (pod, source) => this.githubAccess(pod, source),
    }, sessionId, options);
  }

  /**
   * Stops every running container of the session: SIGTERM, the pod's grace period, SIGKILL.
   * Idempotent. Throws `SessionNotFound` when neither the store nor Docker knows the session.
   */
  async stop(sessionId: string): Promise<void> {
    const record = await this.options.store.load(sessionId).catch(() => undefined);
    // Starting, perhaps with no container to stop yet: its launch finds this and starts nothing,
    // or stops what it has just made (see launching). Marked before the containers are listed,
    // so a container made in between is one the launch stops.
    if (record && (record.startingUntil ?? 0) > Date.now()) await this.options.store.update(sessionId, { stopAskedAt: Date.now() });
    const containers = await this.containersOf(sessionId);
    if (!record && containers.length === 0) {
      throw new CldpdError('SessionNotFound', `No session "${sessionId}" on this host. List sessions with "cldpd ps --all".`);
    }
    const grace = record ? await loadPod(this.options.pods, record.pod).then((p) => p.config.stopGraceSeconds, () => 10) : 10;
    await Promise.all(containers.filter((c) => c.state === 'running').map((c) => this.options.runner.stop(c.id, grace)));
  }


  /**
   * Creates the persisted volumes that do not exist yet and makes each one the image
   * user's (non-root users only). Docker creates a volume's directory root-owned unless the
   * image already has that path: without this, a non-root agent could not write its state
   * and the next run could not resume it. A volume is given to the user unless this host
   * recorded doing so for that same user, so a volume left root-owned (a start that died
   * half-way, a pod that changed its USER, a volume older than this check) is put right.
   * Throws `InvalidPod` when the owner cannot be set, saying what to change in the pod.
   */
  private async prepareVolumes(pod: Pod, image: ImageInfo, volumes: readonly PersistedVolume[], labels: Omit<Parameters<typeof volumeLabels>[0], 'path'>): Promise<void> {
    const { runner, store } = this.options;
    const unowned: PersistedVolume[] = [];
    for (const v of volumes) {
      const created = await runner.ensureVolume(v.volume, volumeLabels({ ...labels, path: v.path }));
      if (!runsAsRoot(image) && (created || (await store.volumeOwner(v.volume)) !== image.user)) unowned.push(v);
    }
    if (unowned.length === 0) return;
    try {
      await runner.chownVolumes(image.id, image.user, unowned);
    } catch (err) {
      throw new CldpdError('InvalidPod', `Pod "${pod.name}": the persisted paths ${unowned.map((v) => v.path).join(', ')} would belong to root, which the image's user "${image.user}" cannot write, and cldpd could not give them to that user (${messageOf(err)}). Create these paths in the Dockerfile, owned by that user (for example "RUN mkdir -p /home/agent/.claude" before "USER agent"), or change "persist" in pod.json.`, { cause: err });
    }
    for (const v of unowned) await store.setVolumeOwner(v.volume, image.user);
  }

  private containersOf(sessionId: string): Promise<ContainerInfo[]> {
    return this.options.runner.list({ [LABELS.session]: sessionId });
  }


  /**
   * The run's repository token, when the pod asks for `github` permissions: minted now
   * (`GitHubAccess` when GitHub refuses). A pod that asks with no one to mint (a terminal run
   * without the GitHub App) runs without one, and a warning says so.
   */
  private async githubAccess(pod: Pod, source: RepoTokenSource | undefined): Promise<GitHubAccess | undefined> {
    if (Object.keys(pod.config.github).length === 0) return undefined;
    if (!source) {
      this.options.logger?.warn({ pod: pod.name }, `Pod "${pod.name}" asks for a GitHub token (pod.json "github"), which only the GitHub App's worker can mint: this run has none.`);
      return undefined;
    }
    return GitHubAccess.open(source, pod.config.github, this.options.logger?.child({ pod: pod.name }));
  }

  /**
   * The steps before the agent in a new container (see setupSteps). The checkout clones into
   * the pod's workdir (the image's when pod.json names none), from the URL the API gave, or
   * the issue's host without a token (a public repository). Throws `InvalidPod` when a
   * checkout has no workdir to clone into.
   */
  private setupFor(pod: Pod, image: ImageInfo, issue: IssueAddress | undefined, access: GitHubAccess | undefined, resume: boolean): SetupStep[] {
    const workdir = pod.config.workdir ?? image.workingDir;
    if (pod.config.checkout && issue && (!workdir || workdir === '/')) {
      throw new CldpdError('InvalidPod', `Pod "${pod.name}" asks for a checkout but has no working directory to clone into: set "workdir" in its pod.json (it is persisted by default).`);
    }
    const cloneUrl = access?.repository.cloneUrl ?? (issue ? `${new URL(issue.url).origin}/${issue.owner}/${issue.repo}.git` : undefined);
    return setupSteps(pod, { issue, cloneUrl, workdir, resume });
  }

  /** Runs `launch` (the container's creation); a token minted for a container that never started is revoked. */
  private async runWith<T>(access: GitHubAccess | undefined, launch: () => Promise<T>): Promise<T> {
    try {
      return await launch();
    } catch (err) {
      await access?.close();
      throw err;
    }
  }

  private startRun(pod: Pod, record: SessionRecord, run: number, plan: RunPlan): Promise<Session> {
    const { store, runner, logger } = this.options;
    /** The last write of the agent's conversation id, which the end of the run may undo. */
    let recording: Promise<void> = Promise.resolve();
    return Session.start({
      ...plan,
      before: { costUsd: record.costUsd ?? 0, turns: record.turns ?? 0 },
      id: record.id,
      podName: pod.name,
      run,
      runner,
      logPath: store.logPath(record.id),
      ...(this.options.maxLogBytesPerRun !== undefined ? { maxLogBytes: this.options.maxLogBytesPerRun } : {}),
      timeoutSeconds: pod.config.timeoutSeconds,
      stopGraceSeconds: pod.config.stopGraceSeconds,
      // What the pod injects may be printed; the reporters redact it, the pieces keep it whole.
      injected: Object.values(containerEnv(pod, this.options.hostEnv, record.id)),
      ...(logger ? { logger: logger.child({ session: record.id, pod: pod.name }) } : {}),
      reader: podAgent(pod).reader({ prices: pod.config.prices }),
      onClaudeSession: (claudeSessionId) => {
        recording = store.update(record.id, { claudeSessionId }).then(() => undefined);
        return recording;
      },
      onFinish: async (terminal, session) => {
        await recordEnd(store, record.id, terminal, session.agent);
        // The agent dropped the prompt of the run that began its conversation (refused before any
        // answer, see AgentEvent result `limit`): there is no conversation to continue.
        if (session.agent.result?.limit?.repeat && record.claudeSessionId === undefined) {
          await recording.catch(() => undefined);
          await store.update(record.id, { claudeSessionId: undefined });
        }
      },
    });
  }
}

/** Whether a command continues the agent's conversation (it names its id). */
function continuesConversation(command: readonly string[]): boolean {
  return command.some((arg) => arg.includes('{claudeSessionId}') || arg.includes('{agentSessionId}'));
}

/** The pod's limits as its command's placeholders take them. */
function limitValues(config: { readonly maxTurns: number | undefined; readonly maxBudgetUsd: number | undefined }): { maxTurns?: string; maxBudgetUsd?: string } {
  return {
    ...(config.maxTurns !== undefined ? { maxTurns: String(config.maxTurns) } : {}),
    ...(config.maxBudgetUsd !== undefined ? { maxBudgetUsd: String(config.maxBudgetUsd) } : {}),
  };
}
