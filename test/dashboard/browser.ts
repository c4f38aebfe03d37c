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

/**
 * The few browser globals the functions below run against in the page (this project's types have no
 * DOM). They are functions, not strings: the dashboard's Content-Security-Policy forbids eval.
 */
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  activeElement: { tagName: string; textContent: string | null; getAttribute(name: string): string | null } | null;
  querySelectorAll(selector: string): { length: number };
};
declare const location: { hash: string };

/** Waits until the dashboard has rendered a page or its error state (body[data-state]). */
export async function settled(page: Page): Promise<"ready" | "error"> {
  await page.waitForFunction(() => document.body.dataset.state === "ready" || document.body.dataset.state === "error", null, { timeout: 30_000 });
  return page.evaluate(() => document.body.dataset.state as "ready" | "error");
}

/** The focused element: its tag, text and href. */
export function focused(page: Page): Promise<{ tag: string; text: string; href: string | null } | null> {
  return page.evaluate(() => {
    const el = document.activeElement;
    return el ? { tag: el.tagName, text: el.textContent ?? "", href: el.getAttribute("href") } : null;
  });
}

/** Waits until the location hash matches `pattern` and a page heading has the focus. */
export async function waitForPageFocus(page: Page, pattern: RegExp): Promise<void> {
  await page.waitForFunction((source) => new RegExp(source).test(location.hash) && document.activeElement?.tagName === "H1", pattern.source, { timeout: 30_000 });
}

/** Waits until every lazily loaded provenance verdict on the page has its answer. */
export async function verdictsLoaded(page: Page): Promise<void> {
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="verdict"][data-state="checking"]').length === 0, null, { timeout: 30_000 });
}
