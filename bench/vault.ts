/**
 * The secret vault's figures (issue 15), on one machine:
 *
 *   npm run bench -- vault [--secrets N] [--bootstrap N] [--samples S] [--workers W] [--trace] [--json]
 *
 * Starts three clusters of five vault enclave processes (startEmbeddedVault: an in-process chain served
 * over HTTP, one host per cluster) and measures:
 * - store latency: S sequential stores of a 32-byte secret, from the SDK call (split, mint, seal, hand
 *   over) until SecretSynced in the first cluster; p50/p95;
 * - retrieval latency: S sequential retrievals by the owner (request, proofs in each enclave, responses,
 *   combination and check); p50/p95;
 * - sync throughput: N secrets stored by W clients at once, each storing its part with the batched SDK store
 *   (storeVaultSecrets: 100 per storeBatch transaction, one hand-over per slot per batch), until every one is
 *   synced in all 3 clusters (counted from SecretSynced events);
 * - bootstrap: a member of the third cluster replaced by a new enclave, until it holds every share of its
 *   slot (N + 2S + the bootstrap extra, from the first cluster's enclave at that slot).
 * `--trace` writes every host event (pages, fetches, confirmations) to stderr with the milliseconds since the
 * start, to see where a phase's time goes. The last line of stdout is one JSON object. Figures on a shared machine are provisional.
 */
import { parseArgs } from "node:util";
import { readVaultEvents } from "../src/chain/actions/read-vault-events.ts";
import { progressWanted } from "../src/cli/output.ts";
import { startEmbeddedVault } from "../src/devnet/vault-embedded.ts";
import { retrieveVaultSecret, storeVaultSecret, storeVaultSecrets } from "../src/sdk/vault.ts";

const { values } = parseArgs({
  options: {
    secrets: { type: "string", default: "1000" },
    bootstrap: { type: "string", default: "10000" },
    samples: { type: "string", default: "50" },
    workers: { type: "string", default: "16" },
    trace: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});
const secrets = Number(values.secrets);
const bootstrapTarget = Number(values.bootstrap);
const samples = Number(values.samples);
const workers = Number(values.workers);
const say = (m: string) => {
  if (progressWanted() || values.trace) process.stderr.write(`${values.trace ? `${Math.round(performance.now() - started)} ` : ""}${m}\n`);
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 10) / 10;
};

const started = performance.now();
const v = await startEmbeddedVault({
  clusters: 3,
  owners: workers,
  onEvent: (host, e) => {
    if (values.trace) process.stderr.write(`${Math.round(performance.now() - started)} host ${host} ${JSON.stringify(e)}\n`);
    else if (e.type === "bootstrap-source-failed" || e.type === "error") say(JSON.stringify(e));
  },
});
try {
  const owners = v.chain.accounts.operators.slice(4).map(v.writer);
  const main = owners[0]!;
  const secret = new TextEncoder().encode("a 32-byte secret for the bench!!");

  say(`store latency: ${samples} sequential stores`);
  const storeMs: number[] = [];
  const tokens: bigint[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    tokens.push((await storeVaultSecret(v.ctx, main, secret)).tokenId);
    storeMs.push(performance.now() - t0);
  }

  say(`retrieval latency: ${samples} sequential retrievals`);
  const getMs: number[] = [];
  const account = v.chain.accounts.operators[4]!;
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    await retrieveVaultSecret(v.ctx, account, tokens[i % tokens.length]!, { clusters: [v.net.clusters[0]!.id] });
    getMs.push(performance.now() - t0);
  }

  async function storeMany(n: number): Promise<{ ms: number; tokens: bigint[] }> {
    const fromBlock = (await v.reader.getBlockNumber()) + 1n;
    const t0 = performance.now();
    const made: bigint[] = [];
    await Promise.all(
      owners.map(async (owner, i) => {
        const part = Math.floor(n / owners.length) + (i < n % owners.length ? 1 : 0);
        if (part > 0) made.push(...(await storeVaultSecrets(v.ctx, owner, Array.from({ length: part }, () => secret), { awaitSync: false })).tokenIds);
      }),
    );
    say(`${made.length} minted and handed to their slots`);
    const want = new Set(made);
    const synced = new Map<bigint, number>();
    let from = fromBlock;
    while ([...want].some((id) => (synced.get(id) ?? 0) < 3)) {
      const head = await v.reader.getBlockNumber();
      if (head >= from) {
        // Filtered to the crawled events, as a host's crawl asks: not the thousands of ShareConfirmed.
        for (const e of await readVaultEvents(v.reader, v.ctx.vault, from, head)) if (e.kind === "synced") synced.set(e.tokenId, (synced.get(e.tokenId) ?? 0) + 1);
        from = head + 1n;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return { ms: performance.now() - t0, tokens: made };
  }

  say(`sync throughput: ${secrets} secrets by ${workers} clients, until synced in 3 clusters`);
  const sync = await storeMany(secrets);

  const extra = Math.max(0, bootstrapTarget - secrets - samples);
  if (extra > 0) {
    say(`bootstrap: storing ${extra} more secrets first`);
    // Setup, not measured: 2,500 at a time, each synced in the 3 clusters before the next, so the chain's node
    // (in this process) is not flooded with proof requests the enclaves would time out on.
    for (let left = extra; left > 0; left -= 2_500) await storeMany(Math.min(2_500, left));
  }
  const peer = v.net.enclave(0, 2)!;
  const held = (await peer.status()).shares;
  say(`bootstrap: a new enclave at slot 2 of cluster 3 fetches ${held} shares`);
  const t0 = performance.now();
  const fresh = await v.net.replace(2, 2);
  say("bootstrap: the replacement is bootstrapped, its host's crawl and confirmations done");
  while ((await fresh.status()).shares < held) await new Promise((r) => setTimeout(r, 20));
  const bootstrapMs = performance.now() - t0;

  const result = {
    benchmark: "vault",
    provisional: true,
    clusters: 3,
    clusterSize: 5,
    threshold: 3,
    store_p50_ms: pct(storeMs, 50),
    store_p95_ms: pct(storeMs, 95),
    retrieve_p50_ms: pct(getMs, 50),
    retrieve_p95_ms: pct(getMs, 95),
    sync_secrets: secrets,
    sync_3_clusters_ms: Math.round(sync.ms),
    bootstrap_shares: held,
    bootstrap_ms: Math.round(bootstrapMs),
    targets: { sync_1000_in_3_clusters_ms: 10_000, bootstrap_10000_ms: 30_000, retrieve_p50_ms: 100 },
  };
  if (!values.json) {
    process.stdout.write(
      `store p50 ${result.store_p50_ms} ms, p95 ${result.store_p95_ms} ms; retrieval p50 ${result.retrieve_p50_ms} ms, p95 ${result.retrieve_p95_ms} ms\n` +
        `${secrets} secrets synced in 3 clusters in ${result.sync_3_clusters_ms} ms; bootstrap of ${held} shares in ${result.bootstrap_ms} ms\n`,
    );
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await v.close();
}
