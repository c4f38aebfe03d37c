/** The network: chain, head, contracts (and which are deployed), IPFS node, the policy the page verifies against. */
import { contractNames, type App, type ContractKey } from "../app.ts";
import { facts, h, hex, table, unixTime, verdict } from "../dom.ts";

export async function networkPage(app: App): Promise<HTMLElement> {
  const { config } = app;
  const [block, ipfs, contracts] = await Promise.all([
    app.client.getBlock({ blockNumber: app.head }),
    ipfsVersion(config.ipfsUrl),
    Promise.all(
      [...(Object.keys(contractNames) as ContractKey[]), ...(app.deployment.testToken ? ["testToken" as const] : [])].map(async (key) => {
        const address = key === "testToken" ? app.deployment.testToken : app.address(key);
        const code = address ? await app.client.getCode({ address }).catch(() => undefined) : undefined;
        return { key, address, hasCode: code !== undefined && code !== "0x" };
      }),
    ),
  ]);
  return h(
    "section",
    null,
    h("h1", { tabindex: "-1" }, "Network"),
    facts([
      ["Chain id", String(app.chainId)],
      ["Block height", h("span", { "data-testid": "height" }, `#${block.number}`)],
      ["Latest block time", unixTime(block.timestamp)],
      ["Chain RPC", h("code", null, config.rpcUrl)],
      ["Chain WebSocket", config.wsUrl ? h("code", null, config.wsUrl) : "none given: the page polls every 2 s"],
      ["Updates", app.live ? "pushed: new blocks over WebSocket (eth_subscribe)" : "polled over HTTP"],
      ["IPFS API", h("span", null, h("code", null, config.ipfsUrl), " ", ipfs.ok ? `(answers: ${ipfs.text})` : h("strong", { class: "badge bad" }, `✗ unreachable: ${ipfs.text}`))],
      ["Deployment", `${config.deploymentSource ?? "given by the server"}, from block ${app.fromBlock}`],
      [
        "Verification policy",
        config.policy
          ? `${config.policy.name} (manifest ${config.policy.digest.slice(0, 18)}…)${config.policy.allowSimulation ? ", accepts SIMULATED TEEs" : ""}`
          : "none: the serving process was given no policy, so evidence and provenance are not verified",
      ],
    ]),
    table(
      "Contracts",
      ["Contract", "Address", "State"],
      contracts.map((c) => [
        c.key === "testToken" ? "Test token (ERC-20)" : contractNames[c.key],
        c.address ? hex(c.address, 8) : "—",
        !c.address ? h("span", { class: "muted" }, "not deployed on this network") : c.hasCode ? verdict(true, "code present") : verdict(false, "", "no code at this address"),
      ]),
      { "data-testid": "contracts" },
    ),
  );
}

async function ipfsVersion(url: string): Promise<{ ok: boolean; text: string }> {
  try {
    const res = await fetch(`${url}/api/v0/version`, { method: "POST" });
    if (!res.ok) return { ok: false, text: `HTTP ${res.status}` };
    const body = (await res.json()) as { Version?: string; System?: string };
    return { ok: true, text: `version ${body.Version ?? "?"}` };
  } catch (error) {
    return { ok: false, text: (error as Error).message };
  }
}
