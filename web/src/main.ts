/**
 * The dashboard's entry: loads the configuration, checks that the chain
 * answers and that the deployment's contracts are there (a clear error state
 * otherwise, never a blank page), then routes #/<page>[/<param>] to a page
 * and renders it again on every new block.
 */
import { App, type Page } from "./app.ts";
import { createReader } from "./chain.ts";
import { loadConfig } from "./config.ts";
import { errorBox, h } from "./dom.ts";
import { collaborationsPage } from "./pages/collaborations.ts";
import { enclavesPage } from "./pages/enclaves.ts";
import { networkPage } from "./pages/network.ts";
import { nodesPage } from "./pages/nodes.ts";
import { pipelinesPage } from "./pages/pipelines.ts";
import { taskPage, tasksPage } from "./pages/tasks.ts";
import { vaultPage } from "./pages/vault.ts";
import "./style.css";

const pages: Record<string, { title: string; page: Page; detail?: Page }> = {
  network: { title: "Network", page: networkPage },
  enclaves: { title: "Enclaves", page: enclavesPage },
  tasks: { title: "Tasks", page: tasksPage, detail: taskPage },
  collaborations: { title: "Collaborations", page: collaborationsPage },
  pipelines: { title: "Pipelines & grants", page: pipelinesPage },
  vault: { title: "Vault", page: vaultPage },
  nodes: { title: "Nodes", page: nodesPage },
};

const main = document.getElementById("main")!;
const status = document.getElementById("status")!;

function setStatus(text: string, problem = false): void {
  status.textContent = text;
  status.classList.toggle("problem", problem);
}

function fatal(title: string, message: string, hint?: string): void {
  document.body.dataset.state = "error";
  setStatus(`Error: ${title}`, true);
  main.replaceChildren(errorBox(title, message, hint));
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(timer));
}

async function boot(): Promise<App | undefined> {
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    fatal("Dashboard server unreachable", (error as Error).message);
    return undefined;
  }
  if (!config.deployment) {
    fatal(
      "No usable deployment",
      config.deploymentProblem ?? "the dashboard was started without a deployment",
      "Give the network's deployment: 'cloister dashboard --deployment <deployment.json | network.json>' (a devnet writes both into its data dir).",
    );
    return undefined;
  }
  const { client, live } = createReader(config);
  let chainId: number;
  try {
    chainId = await withTimeout(client.getChainId(), 15_000, `the chain RPC at ${config.wsUrl ?? config.rpcUrl}`);
  } catch (error) {
    fatal(
      "Chain RPC unreachable",
      `Cannot read the chain at ${config.wsUrl ?? config.rpcUrl}: ${firstLine(error)}`,
      `Is the network running? A node must allow this page's origin (${location.origin}): 'cloister devnet up' does so for its own dashboard; another network needs it on its allow-list (--allow-origin ${location.origin}).`,
    );
    return undefined;
  }
  const d = config.deployment;
  if (d.chainId !== undefined && d.chainId !== chainId) {
    fatal("Deployment of another chain", `The deployment (${config.deploymentSource ?? "given file"}) is for chain ${d.chainId}, but ${config.rpcUrl} serves chain ${chainId}.`, "Give the deployment file of this network, or the RPC URL of the deployment's chain.");
    return undefined;
  }
  const missing: string[] = [];
  for (const [name, address] of [["EnclaveRegistry", d.registry], ["TaskMarket", d.market]] as const) {
    const code = await client.getCode({ address }).catch(() => undefined);
    if (!code || code === "0x") missing.push(`${name} ${address}`);
  }
  if (missing.length > 0) {
    fatal("Deployment does not match this chain", `No contract on chain ${chainId} at ${missing.join(", ")} (from ${config.deploymentSource ?? "the given deployment"}).`, "The deployment file belongs to another network, or the chain was reset: give this network's deployment.");
    return undefined;
  }
  const app = new App({ config, client, live, deployment: d, chainId });
  app.head = await client.getBlockNumber();
  return app;
}

function firstLine(error: unknown): string {
  const e = error as { shortMessage?: string; message?: string };
  return (e.shortMessage ?? e.message ?? String(error)).split("\n")[0]!;
}

function route(): { key: string; param: string | undefined } {
  const [, key = "network", param] = location.hash.match(/^#\/([a-z]+)(?:\/(.+))?$/) ?? [];
  return { key: key in pages ? key : "network", param: param === undefined ? undefined : decodeURIComponent(param) };
}

let rendering: Promise<void> | undefined;
let again = false;

/** Renders the current route; a new block during a render queues one more. Keeps keyboard focus where it was. */
async function render(app: App, moveFocus: boolean): Promise<void> {
  if (rendering) {
    again = true;
    if (moveFocus) await rendering.then(() => render(app, true));
    return;
  }
  rendering = (async () => {
    const { key, param } = route();
    const entry = pages[key]!;
    for (const a of document.querySelectorAll<HTMLAnchorElement>("#nav a")) {
      if (a.getAttribute("href") === `#/${key}`) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    let content: HTMLElement;
    try {
      content = await (param !== undefined && entry.detail ? entry.detail(app, param) : entry.page(app, param));
    } catch (error) {
      content = h("section", null, h("h1", { tabindex: "-1" }, entry.title), errorBox(`Could not read ${entry.title.toLowerCase()}`, firstLine(error), "The page tries again on the next block."));
    }
    document.title = `${content.querySelector("h1")?.textContent ?? entry.title} · Cloister dashboard`;
    const focused = document.activeElement instanceof HTMLElement && main.contains(document.activeElement) ? focusKey(document.activeElement) : undefined;
    if (moveFocus || main.firstElementChild?.outerHTML !== content.outerHTML) {
      // A re-render on a new block keeps what the reader opened (the plots' number tables).
      const open = moveFocus ? [] : [...main.querySelectorAll("details")].map((d) => d.open);
      main.replaceChildren(content);
      main.querySelectorAll("details").forEach((d, i) => (d.open = open[i] ?? false));
    }
    document.body.dataset.state = "ready";
    if (moveFocus) (main.querySelector<HTMLElement>("h1") ?? main).focus();
    else if (focused) main.querySelector<HTMLElement>(focused)?.focus();
  })().finally(() => (rendering = undefined));
  await rendering;
  if (again) {
    again = false;
    await render(app, false);
  }
}

/** A selector for the focused element that survives a re-render (links by href, others by id). */
function focusKey(el: HTMLElement): string | undefined {
  if (el.id) return `#${CSS.escape(el.id)}`;
  const href = el.getAttribute("href");
  if (href) return `[href="${CSS.escape(href)}"]`;
  return undefined;
}

async function start(): Promise<void> {
  const app = await boot();
  if (!app) return;
  const mode = app.live ? "live over WebSocket" : "polling over HTTP";
  setStatus(`Chain ${app.chainId}, block #${app.head} (${mode})`);
  window.addEventListener("hashchange", () => void render(app, true));
  app.client.watchBlockNumber({
    emitOnBegin: false,
    // viem subscribes to newHeads over a WebSocket transport and polls over HTTP.
    pollingInterval: 2000,
    onBlockNumber: (n) => {
      if (n <= app.head) return;
      app.head = n;
      setStatus(`Chain ${app.chainId}, block #${n} (${mode})`);
      void render(app, false);
    },
    onError: (error) => setStatus(`Chain connection problem: ${firstLine(error)}; retrying`, true),
  });
  await render(app, location.hash !== "");
}

void start();
