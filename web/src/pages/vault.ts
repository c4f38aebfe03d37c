/** The vault: tokens (secrets), clusters, each slot's confirmation and sync state, re-sharing events, sync progress per cluster. */
import type { Address, Hex } from "viem";
import { readContract } from "viem/actions";
import { secretVaultAbi } from "../../../src/chain/abi/SecretVault.ts";
import type { App } from "../app.ts";
import { facts, h, hex, notDeployed, stateTag, table, unixTime } from "../dom.ts";
import { lineChart } from "../plot.ts";

interface Confirmed {
  tokenId: bigint;
  cluster: bigint;
  slot: number;
  version: bigint;
  enclave: Address;
}

export async function vaultPage(app: App): Promise<HTMLElement> {
  const title = h("h1", { tabindex: "-1" }, "Vault");
  const log = await app.events("vault");
  if (!log) return h("section", null, title, notDeployed("Vault", "SecretVault"));
  const address = log.address;
  const clusters = new Map<bigint, { created: bigint; replaced: number }>();
  for (const e of log.named<{ cluster: bigint; members: readonly Address[] }>("ClusterCreated")) clusters.set(e.args.cluster, { created: e.blockNumber, replaced: 0 });
  for (const e of log.named<{ cluster: bigint }>("ClusterMemberReplaced")) {
    const c = clusters.get(e.args.cluster);
    if (c) c.replaced++;
  }
  const clusterRows = await Promise.all(
    [...clusters.keys()].map(async (id) => {
      const [size, epoch, members] = await readContract(app.client, { address, abi: secretVaultAbi, functionName: "clusterOf", args: [id] });
      return [String(id), String(size), String(epoch), members.map((m, slot) => h("div", null, `slot ${slot}: `, hex(m))), String(clusters.get(id)!.replaced)];
    }),
  );
  const stored = log.named<{ tokenId: bigint; owner: Address; threshold: number; shares: number; sharesRoot: Hex }>("SecretStored");
  const confirmations = log.named<Confirmed>("ShareConfirmed");
  const reshared = log.named<{ tokenId: bigint; cluster: bigint; version: bigint; sharesRoot: Hex }>("SecretReshared");
  const tokens = await Promise.all(
    stored.reverse().map(async (s) => {
      const id = s.args.tokenId;
      const secret = (await readContract(app.client, { address, abi: secretVaultAbi, functionName: "secretOf", args: [id] })) as { threshold: number; shares: number; version: bigint; burned: boolean };
      const tokenClusters = [...new Set([...confirmations, ...reshared, ...log.named<{ tokenId: bigint; cluster: bigint }>("SecretSynced")].filter((e) => e.args.tokenId === id).map((e) => e.args.cluster))];
      const syncs = await Promise.all(
        tokenClusters.map(async (cluster) => {
          const [mask, synced] = await readContract(app.client, { address, abi: secretVaultAbi, functionName: "syncOf", args: [id, cluster] });
          return { cluster, mask, synced };
        }),
      );
      return h(
        "article",
        { class: "card", "data-testid": "vault-token" },
        h("h2", null, `Token ${shortId(id)}`, " ", stateTag(secret.burned ? "burned" : syncs.some((x) => x.synced) ? "synced" : syncs.length ? "syncing" : "awaiting shares")),
        facts([
          ["Owner", hex(s.args.owner)],
          ["Threshold", `${secret.threshold} of ${secret.shares} shares`],
          ["Version", String(secret.version)],
        ]),
        table(
          "Slots by cluster",
          ["Cluster", "Sync", "Slots confirmed"],
          syncs.map((x) => [
            String(x.cluster),
            x.synced ? "✓ synced" : "… not yet synced",
            Array.from({ length: secret.shares }, (_, slot) => h("div", null, `slot ${slot}: ${x.mask & (1 << slot) ? "✓ confirmed" : "✗ unconfirmed"}`)),
          ]),
          { "data-testid": "vault-sync" },
        ),
        table("Re-sharing", ["Cluster", "Version", "Shares root"], reshared.filter((e) => e.args.tokenId === id).map((e) => [String(e.args.cluster), String(e.args.version), hex(e.args.sharesRoot)])),
      );
    }),
  );
  // Sync progress: confirmations per cluster over chain time.
  const charts = await Promise.all(
    [...clusters.keys()].map(async (cluster) => {
      const mine = confirmations.filter((e) => e.args.cluster === cluster);
      const times = await Promise.all(mine.map((e) => app.times.of(e.blockNumber)));
      return lineChart(`Cluster ${cluster}: share confirmations (cumulative)`, "confirmations", mine.map((e, i) => ({ x: times[i]!, y: i + 1, label: `token ${shortId(e.args.tokenId)} slot ${e.args.slot} at ${unixTime(times[i]!)}` })));
    }),
  );
  return h(
    "section",
    null,
    title,
    table("Clusters", ["Cluster", "Size", "Epoch", "Members", "Members replaced"], clusterRows, { "data-testid": "vault-clusters" }),
    charts.length ? h("div", { class: "charts" }, charts) : null,
    h("h2", null, "Tokens"),
    tokens.length ? tokens : h("p", { class: "empty" }, "No secret has been stored in the vault yet."),
  );
}

function shortId(id: bigint): string {
  return id < 1n << 64n ? id.toString() : `0x${id.toString(16).slice(0, 10)}…`;
}
