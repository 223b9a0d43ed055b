import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe } from 'vitest';

/** Debian's chromium (scripts/lib.sh installs it); never a downloaded browser. */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/** `describe` that runs where Debian's chromium is installed; under CI its absence is a failure, not a skip. */
export const describeWithChromium = CHROMIUM ? describe : process.env.CI === 'true'
  ? describe
  : (name: string, fn: () => void) => describe.skip(`${name} (skipped: no chromium here; scripts/setup.sh installs it)`, fn);

/**
 * Launches headless Chromium for the enclosing describe (closed after it) and makes
 * `test-artifacts/<shots>`, where its screenshots go. Returns the browser's getter and that folder.
 */
export function useChromium(shots: string): { browser: () => Browser; shots: string } {
  const dir = join(process.cwd(), 'test-artifacts', shots);
  let browser: Browser | undefined;
  beforeAll(async () => {
    await mkdir(dir, { recursive: true });
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });
  return { browser: () => browser as Browser, shots: dir };
}

/**
 * A new page that loads nothing from anywhere: every request but the page's own content is
 * aborted and listed in `requests`, so a test sees any image, font or script that got through.
 */
export async function offlinePage(browser: Browser): Promise<{ page: Page; requests: string[] }> {
  const page = await browser.newPage();
  const requests: string[] = [];
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    if (request.url().startsWith('data:') || request.url() === 'about:blank') return void request.continue();
    requests.push(request.url());
    void request.abort();
  });
  return { page, requests };
}
