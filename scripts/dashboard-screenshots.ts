// Takes the screenshots of docs/dashboard.md (docs/img/dashboard-*.png): a 2-node devnet with its
// dashboard, eight echo tasks 1.5 s apart, and the optional contracts populated by the tests' fixture; then one
// page per section in Debian's Chromium (playwright-core), and the error state of a bad deployment.
//   node scripts/dashboard-screenshots.ts [--out docs/img]
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startDashboardServer } from "../src/devnet/dashboard-server.ts";
import { localNetworkManifest } from "../src/devnet/network-policy.ts";
import { connectToNetwork } from "../src/devnet/remote-client.ts";
import { startMultiProcessDevnet } from "../src/devnet/multi-process.ts";
import { launchChromium, settled, verdictsLoaded } from "../test/dashboard/browser.ts";
import { populateOptionalSections } from "../test/dashboard/fixture.ts";

const { values } = parseArgs({ options: { out: { type: "string", default: "docs/img" }, tasks: { type: "string", default: "8" }, "pause-ms": { type: "string", default: "1500" } } });
const out = resolve(values.out);
const dir = await mkdtemp(join(tmpdir(), "cloister-screens-"));
const devnet = await startMultiProcessDevnet({ dataDir: dir, nodes: 2, dashboard: true });
const browser = await launchChromium();
try {
  const { manifest } = await localNetworkManifest(devnet.simPkiDir);
  const remote = await connectToNetwork({ rpcUrl: devnet.rpcUrl, wsUrl: devnet.wsUrl, ipfsUrl: devnet.ipfsUrl, deployment: { casUrl: devnet.casUrl }, manifest });
  const echo = new Uint8Array(await readFile(new URL("../examples/echo.js", import.meta.url)));
  let lastTask = 0n;
  try {
    for (let i = 0; i < Number(values.tasks); i++) {
      lastTask = (await remote.client.runTask({ program: echo, input: new TextEncoder().encode(`screenshot ${i}`), timeoutMs: 60_000 })).taskId;
      // Spread over time, so the plots have a shape.
      await new Promise((resolve) => setTimeout(resolve, Number(values["pause-ms"])));
    }
  } finally {
    await remote.close();
  }
  const sections = await populateOptionalSections(devnet);
  const full = await startDashboardServer({
    rpcUrl: devnet.rpcUrl,
    wsUrl: devnet.wsUrl,
    ipfsUrl: devnet.ipfsUrl,
    deployment: { chainId: devnet.chainId, registry: devnet.deployment.registry, market: devnet.deployment.market, deployBlock: devnet.deployment.deployBlock.toString(), testToken: devnet.testToken, ...sections },
    deploymentSource: "the devnet's deployment, with the optional contracts deployed by test/dashboard/fixture.ts",
    manifest: devnet.manifest,
    nodeUrls: devnet.nodes.flatMap((n) => (n.httpUrl ? [n.httpUrl] : [])),
  });
  const bad = await startDashboardServer({ rpcUrl: devnet.rpcUrl, ipfsUrl: devnet.ipfsUrl, deploymentProblem: "/tmp/deployment.json is not a Cloister deployment: registry is not a 20-byte hex address. A deployment file holds chainId, registry, market and deployBlock (a devnet writes deployment.json and network.json in its data dir)." });
  for (const o of [...full.origins, ...bad.origins]) devnet.allowedOrigins.add(o);
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const shots: [string, string][] = [
    ["network", `${full.url}#/network`],
    ["enclaves", `${full.url}#/enclaves`],
    ["tasks", `${full.url}#/tasks`],
    ["task", `${full.url}#/tasks/0x${lastTask.toString(16)}`],
    ["collaborations", `${full.url}#/collaborations`],
    ["pipelines", `${full.url}#/pipelines`],
    ["vault", `${full.url}#/vault`],
    ["nodes", `${full.url}#/nodes`],
    ["error", bad.url],
  ];
  for (const [name, url] of shots) {
    await page.goto(url);
    await settled(page);
    // The task page asks the serving process for the provenance verdict: wait for it.
    if (name === "task") await page.locator('[data-testid="provenance"]').waitFor();
    // Runs and uses fill in their verdicts lazily: wait until none is still being checked.
    await verdictsLoaded(page);
    await page.evaluate(() => new Promise((r) => setTimeout(r, 300)));
    const file = join(out, `dashboard-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.error(`wrote ${file}`);
  }
  await page.close();
  await Promise.all([full.close(), bad.close()]);
} finally {
  await browser.close();
  await devnet.close();
  await rm(dir, { recursive: true, force: true });
}
