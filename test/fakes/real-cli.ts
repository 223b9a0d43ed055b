import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import { describe } from 'vitest';

/** A real agent CLI's test suite: its pinned version, the image its pods build FROM, and the example pod it proves. */
export interface RealCli {
  /** `package.json` config key of the pinned version: `claudeCodeVersion`, `codexVersion`, `geminiCliVersion`. */
  readonly versionKey: string;
  /** The image's repository; the tag is the version. */
  readonly image: string;
  /** Its name for people, and the suite's directory and script: `Claude Code`, `real-claude`. */
  readonly title: string;
  readonly suite: string;
  /** How long its script takes, for the skip message. */
  readonly takes: string;
  /** The example pod (`examples/pods/<name>`) and the text of its Dockerfile's install line. */
  readonly example: string;
  readonly install: string;
}

/** What a suite of a real CLI needs: its version, base image, the example's Dockerfile on that base, its pod.json, and a `describe` that runs only where the image is. */
export interface RealCliSuite {
  readonly version: string;
  readonly baseImage: string;
  /**
   * The example's Dockerfile with its base swapped for the suite's image (no registry here):
   * everything up to the CLI's install is replaced by `FROM` that image; every line after it
   * is the example's own, so the suite proves the example's pod works.
   */
  readonly dockerfile: string;
  /** The example's pod.json, less inheritEnv (the suite's env points at the fake API). */
  readonly podJson: Record<string, unknown>;
  /** `describe` that runs where the image is ready (always in CI, where its absence fails the run). */
  readonly describeWith: typeof describe | typeof describe.skip;
}

async function missing(image: string): Promise<string | undefined> {
  try {
    await new Docker().getImage(image).inspect();
    return undefined;
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    return status === 404 ? `the image ${image} is missing` : `Docker engine not reachable (${(err as Error).message})`;
  }
}

/** Prepares a real CLI's suite (see RealCliSuite); under CI=true a missing image fails the file. */
export async function realCliSuite(cli: RealCli): Promise<RealCliSuite> {
  const root = new URL('../../', import.meta.url);
  const version = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { config: Record<string, string> }).config[cli.versionKey] ?? '';
  const baseImage = `${cli.image}:${version}`;
  const unavailable = await missing(baseImage);
  if (unavailable && process.env.CI === 'true') {
    throw new Error(`${unavailable}. CI runs the real ${cli.title} suite: .ci/run prepares it with scripts/${cli.suite}.sh.`);
  }
  if (unavailable) {
    console.warn(`\n[${cli.suite}] SKIPPED: ${unavailable}. Run "bash scripts/${cli.suite}.sh" (${cli.takes}) to run the suite on the real ${cli.title}.\n`);
  }
  const lines = readFileSync(new URL(`examples/pods/${cli.example}/Dockerfile`, root), 'utf8').split('\n');
  const install = lines.findIndex((l) => l.includes(cli.install));
  if (install < 0) throw new Error(`examples/pods/${cli.example}/Dockerfile no longer has "${cli.install}": update test/${cli.suite}/harness.ts`);
  const { inheritEnv: _, ...podJson } = JSON.parse(readFileSync(new URL(`examples/pods/${cli.example}/pod.json`, root), 'utf8')) as Record<string, unknown>;
  return {
    version, baseImage, podJson,
    dockerfile: [`FROM ${baseImage}`, ...lines.slice(install + 1)].join('\n'),
    describeWith: unavailable ? describe.skip : describe,
  };
}
