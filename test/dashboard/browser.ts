/**
 * Debian's Chromium (/usr/bin/chromium) driven by playwright-core, for the
 * dashboard's browser tests: no browser download. Playwright gives every
 * launch a fresh temporary profile (--user-data-dir); the flags are those
 * known to work headless on these machines. Outside CI the tests skip, saying
 * why, when the browser is not installed (.ci/services installs Debian's
 * chromium package).
 */
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";

export const CHROMIUM = process.env.CLOISTER_CHROMIUM ?? "/usr/bin/chromium";

/**
 * Why browser tests cannot run here, or undefined when they can. Under CI (CI=true) they never skip:
 * .ci/services installs Chromium, and a CI run without it must fail, not pass with the tests skipped.
 */
export const noBrowser: string | undefined =
  existsSync(CHROMIUM) || process.env.CI === "true" ? undefined : `no Chromium at ${CHROMIUM}: 'apt-get install -y chromium' (.ci/services does) or set CLOISTER_CHROMIUM`;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Waits until the dashboard has rendered a page or its error state (body[data-state]). */
export async function settled(page: Page): Promise<"ready" | "error"> {
  await page.waitForFunction(`["ready", "error"].includes(document.body.dataset.state)`, null, { timeout: 30_000 });
  return inPage<"ready" | "error">(page, "document.body.dataset.state");
}

/** The value of a JavaScript expression in the page (a string: this project's types have no DOM). */
export function inPage<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate(expression) as Promise<T>;
}
