/**
 * `cloister dashboard`: serves the read-only web dashboard of any network
 * (usage.ts, dashboardUsage) until Ctrl-C or SIGTERM. A deployment file that
 * is not usable does not stop it: the page shows why, as its error state.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Manifest } from "../../attestation/manifest/index.ts";
import { readNetworkFile, type NetworkFile } from "../../devnet/network-file.ts";
import { DashboardDeploymentError, dashboardDeploymentOf, readDashboardDeployment, type DashboardDeployment } from "../../devnet/dashboard-deployment.ts";
import { manifestFrom } from "../network-options.ts";
import { UsageError } from "../errors.ts";
import { printJson, stderrReporter } from "../output.ts";
import { dashboardUsage } from "../usage.ts";

export async function dashboardCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      network: { type: "string" },
      rpc: { type: "string" },
      ws: { type: "string" },
      ipfs: { type: "string" },
      deployment: { type: "string" },
      policy: { type: "string" },
      "sim-pki": { type: "string" },
      node: { type: "string", multiple: true },
      port: { type: "string", default: "8560" },
      json: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
    },
  });
  if (positionals.length > 0) throw new UsageError(`dashboard takes no positional arguments\n\n${dashboardUsage}`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port takes a port number (0 picks a free port), got '${values.port}'`);
  const network: NetworkFile | undefined = values.network ? await readNetworkFile(resolve(values.network)) : undefined;
  const rpcUrl = values.rpc ?? network?.endpoints.rpc;
  const ipfsUrl = values.ipfs ?? network?.endpoints.ipfs;
  if (!rpcUrl || !ipfsUrl) throw new UsageError(`the dashboard needs the chain's --rpc and the IPFS node's --ipfs (or a --network that names them)\n\n${dashboardUsage}`);
  for (const [flag, url, schemes] of [["--rpc", rpcUrl, ["http:", "https:"]], ["--ipfs", ipfsUrl, ["http:", "https:"]], ["--ws", values.ws, ["ws:", "wss:"]]] as const) {
    if (url !== undefined && (!URL.canParse(url) || !(schemes as readonly string[]).includes(new URL(url).protocol))) throw new UsageError(`${flag} takes a ${schemes.join("//… or ")}//… URL, got '${url}'`);
  }
  const wsUrl = values.ws ?? (values.rpc ? undefined : network?.endpoints.ws);

  let deployment: DashboardDeployment | undefined;
  let deploymentProblem: string | undefined;
  let deploymentSource: string | undefined;
  if (values.deployment) {
    deploymentSource = resolve(values.deployment);
    try {
      deployment = await readDashboardDeployment(deploymentSource);
    } catch (error) {
      if (!(error instanceof DashboardDeploymentError)) throw error;
      deploymentProblem = error.message;
    }
  } else if (network) {
    deployment = dashboardDeploymentOf(network.deployment, network.testToken ? { testToken: network.testToken } : {});
    deploymentSource = network.path;
  } else {
    deploymentProblem = "no deployment was given: start the dashboard with --deployment <deployment.json | network.json> or --network <devnet dir>";
  }
  const manifest: Manifest = values.policy || values["sim-pki"] || !network ? await manifestFrom(values) : network.manifest;

  const reporter = stderrReporter({ quiet: values.quiet });
  const { startDashboardServer } = await import("../../devnet/dashboard-server.ts");
  const server = await startDashboardServer({
    rpcUrl,
    ...(wsUrl ? { wsUrl } : {}),
    ipfsUrl,
    ...(deployment ? { deployment } : {}),
    ...(deploymentProblem ? { deploymentProblem } : {}),
    ...(deploymentSource ? { deploymentSource } : {}),
    manifest,
    nodeUrls: values.node ?? [],
    port,
    onStep: (m) => reporter.detail(m),
  });
  if (deploymentProblem) process.stderr.write(`cloister: ${deploymentProblem}\n`);
  if (values.json) printJson({ ready: true, url: server.url, origins: server.origins, rpcUrl, wsUrl: wsUrl ?? null, ipfsUrl, deploymentProblem: deploymentProblem ?? null, policy: manifest.name ?? null });
  else {
    process.stdout.write(
      [
        `Cloister dashboard ${server.url}  (read-only; policy ${manifest.name ?? "unnamed"})`,
        `  reads chain ${wsUrl ?? rpcUrl} and IPFS ${ipfsUrl} from the browser: they must allow origin ${server.origins[0]}`,
        "ready",
        "",
      ].join("\n"),
    );
  }
  await new Promise<void>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  await server.close();
  return 0;
}
