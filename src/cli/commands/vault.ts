/**
 * `cloister vault store|status|get|transfer|burn|reshare` against a devnet with vault
 * clusters (`cloister devnet up --clusters C`), or any network whose network
 * file names a vault and its gateway. Signs as `--account <i>` or
 * CLOISTER_PRIVATE_KEY. `vault get` writes the secret to stdout or --out and
 * nowhere else.
 */
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { isAddress, type Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { chainDefinition, createReaderClient, createWriterClient } from "../../chain/clients.ts";
import { httpVaultDirectory } from "../../sdk/vault-http-client.ts";
import { httpVaultReshare, reshareVaultCluster, reshareVaultSecret } from "../../sdk/vault-reshare.ts";
import { burnVaultSecret, retrieveVaultSecret, storeVaultSecret, transferVaultSecret, vaultStatus, type VaultContext } from "../../sdk/vault.ts";
import { parsePositiveInt, readInputFile } from "../args.ts";
import { UsageError } from "../errors.ts";
import { loadNetwork, namedNetwork } from "../network-file.ts";
import { signerParseOptions } from "../network-options.ts";
import { printJson, stderrReporter } from "../output.ts";
import { signerKey } from "../signer.ts";
import { vaultUsage } from "../usage.ts";

export async function vaultCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      network: { type: "string" },
      threshold: { type: "string" },
      shares: { type: "string" },
      out: { type: "string" },
      cluster: { type: "string" },
      json: { type: "boolean", default: false },
      ...signerParseOptions,
    },
  });
  const named = namedNetwork(values.network);
  if (!named) throw new UsageError(`vault commands need a network: --network <devnet dir> (or CLOISTER_NETWORK)\n\n${vaultUsage}`);
  const file = await loadNetwork(named, values.network === undefined);
  const vault = file.deployment.vault;
  const gateway = file.endpoints.vault;
  if (!vault || !gateway) throw new UsageError(`the network ${file.path} runs no vault clusters; start one with 'cloister devnet up --clusters 2'`);
  const chain = chainDefinition(file.chainId, file.endpoints.rpc);
  const reader = createReaderClient({ endpoint: { rpcUrl: file.endpoints.rpc }, chain });
  const ctx: VaultContext = { reader, vault, registry: file.deployment.registry, directory: httpVaultDirectory(gateway) };
  const signer = () => privateKeyToAccount(signerKey(values.account, file));
  const writer = () => createWriterClient({ endpoint: { rpcUrl: file.endpoints.rpc }, chain, account: signer() });
  const tokenArg = () => {
    if (positionals.length < 1 || !/^\d{1,78}$/.test(positionals[0]!)) throw new UsageError(`vault ${sub} takes a token id (decimal)\n\n${vaultUsage}`);
    return BigInt(positionals[0]!);
  };

  switch (sub) {
    case "store": {
      if (positionals.length !== 1) throw new UsageError(`vault store takes exactly one file\n\n${vaultUsage}`);
      const secret = await readInputFile(positionals[0]!, "secret");
      const threshold = parsePositiveInt(values.threshold, "--threshold", 3);
      const shares = parsePositiveInt(values.shares, "--shares", 5);
      const stored = await storeVaultSecret(ctx, writer(), secret, { threshold, shares });
      secret.fill(0);
      // Give the other clusters a few seconds to replicate, then report which have synced.
      let status = await vaultStatus(ctx, stored.tokenId);
      for (let i = 0; i < 50 && !status.clusters.every((c) => c.synced); i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = await vaultStatus(ctx, stored.tokenId);
      }
      const clusters = status.clusters.filter((c) => c.synced).map((c) => c.id);
      if (values.json) printJson({ token: stored.tokenId.toString(), clusters: clusters.map(String) });
      else process.stdout.write(`token ${stored.tokenId}\nsynced in cluster(s) ${clusters.join(", ")} (others replicate from them)\n`);
      return 0;
    }
    case "status": {
      const s = await vaultStatus(ctx, tokenArg());
      if (values.json) {
        printJson({
          token: s.tokenId.toString(),
          version: s.version.toString(),
          threshold: s.threshold,
          shares: s.shares,
          burned: s.burned,
          owner: s.owner,
          clusters: s.clusters.map((c) => ({ id: c.id.toString(), synced: c.synced, slots: c.slots.map((x) => ({ slot: x.slot, enclave: x.enclave, confirmed: x.confirmed })) })),
        });
      } else {
        const lines = [`token ${s.tokenId}: ${s.threshold}-of-${s.shares}, version ${s.version}${s.burned ? ", BURNED" : `, owner ${s.owner}`}`];
        for (const c of s.clusters) lines.push(`  cluster ${c.id}: ${c.synced ? "synced" : "not synced"}  ${c.slots.map((x) => `${x.slot}:${x.confirmed ? "✓" : "·"}`).join(" ")}`);
        process.stdout.write(`${lines.join("\n")}\n`);
      }
      return 0;
    }
    case "get": {
      const secret = await retrieveVaultSecret(ctx, signer(), tokenArg());
      if (values.out) await writeFile(values.out, secret, { mode: 0o600 });
      else process.stdout.write(secret);
      secret.fill(0);
      return 0;
    }
    case "transfer": {
      const token = tokenArg();
      const to = positionals[1];
      if (!to || !isAddress(to)) throw new UsageError(`vault transfer takes a token id and an address\n\n${vaultUsage}`);
      const tx = await transferVaultSecret(ctx, writer(), token, to as Address);
      if (values.json) printJson({ token: token.toString(), to, transactionHash: tx.hash });
      else process.stdout.write(`token ${token} transferred to ${to} (${tx.hash})\n`);
      return 0;
    }
    case "burn": {
      const token = tokenArg();
      const tx = await burnVaultSecret(ctx, writer(), token);
      if (values.json) printJson({ token: token.toString(), burned: true, transactionHash: tx.hash });
      else process.stdout.write(`token ${token} burned (${tx.hash}); the enclaves drop its shares\n`);
      return 0;
    }
    case "reshare": {
      if (!values.cluster || !/^\d{1,20}$/.test(values.cluster)) throw new UsageError(`vault reshare needs --cluster <id> (the clusters are in 'cloister vault status <token>')\n\n${vaultUsage}`);
      const cluster = BigInt(values.cluster);
      const reshare = httpVaultReshare(gateway);
      if (positionals.length > 0) {
        const r = await reshareVaultSecret(ctx, reshare, tokenArg(), cluster);
        if (values.json) printJson({ token: r.tokenId.toString(), cluster: cluster.toString(), version: r.version.toString(), newRoot: r.newRoot, transactionHash: r.transactionHash });
        else process.stdout.write(`token ${r.tokenId} re-shared in cluster ${cluster}: version ${r.version}, root ${r.newRoot} (${r.transactionHash}); the other clusters fetch the new shares\n`);
        return 0;
      }
      const progress = stderrReporter({ quiet: values.json });
      progress.step(`re-sharing every token cluster ${cluster} holds`);
      const all = await reshareVaultCluster(ctx, reshare, cluster, (done, total, last) => progress.detail(`${done}/${total} token ${last.tokenId}: ${"version" in last ? `version ${last.version}` : `skipped (${last.code})`}`));
      if (values.json) {
        printJson({
          cluster: cluster.toString(),
          reshared: all.reshared.map((r) => ({ token: r.tokenId.toString(), version: r.version.toString(), newRoot: r.newRoot, transactionHash: r.transactionHash })),
          skipped: all.skipped.map((x) => ({ token: x.tokenId.toString(), code: x.code, message: x.message })),
        });
      } else {
        const lines = [`cluster ${cluster}: ${all.reshared.length} token(s) re-shared, ${all.skipped.length} skipped`];
        for (const r of all.reshared) lines.push(`  token ${r.tokenId}: version ${r.version}`);
        for (const x of all.skipped) lines.push(`  token ${x.tokenId}: skipped, ${x.code}: ${x.message}`);
        process.stdout.write(`${lines.join("\n")}\n`);
      }
      // A token the cluster has not synced is not an error (re-share it where it is synced); any other failure is.
      return all.skipped.every((x) => x.code === "NOT_SYNCED") ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown vault command '${sub ?? ""}'\n\n${vaultUsage}`);
  }
}
