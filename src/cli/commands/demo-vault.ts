/**
 * `cloister demo vault`: two clusters of five vault enclave processes on a
 * local chain; a secret stored 3-of-5, synced in the first cluster and
 * replicated to the second; two enclaves of the first cluster stopped and the
 * owner still retrieves from it; a non-owner refused; the token transferred
 * and its old owner refused. Every step is printed as it happens.
 */
import { parseArgs } from "node:util";
import { startEmbeddedVault } from "../../devnet/vault-embedded.ts";
import { awaitSynced, retrieveVaultSecret, storeVaultSecret, transferVaultSecret } from "../../sdk/vault.ts";
import { printJson, stderrReporter } from "../output.ts";

export async function demoVaultCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: "boolean", default: false } } });
  const reporter = stderrReporter({ always: !values.json });
  reporter.step("starting a local chain and two clusters of five vault enclaves (SIMULATED TEE, one process each)");
  const v = await startEmbeddedVault({ clusters: 2, onStep: (m) => reporter.detail(m) });
  try {
    const [c1, c2] = v.net.clusters;
    for (const c of v.net.clusters) reporter.detail(`cluster ${c.id}: ${c.members.join(" ")}`);
    const owner = v.writer(v.chain.accounts.requester);
    const secret = new TextEncoder().encode("the key of a secret NFT: 7c1e…");
    reporter.step(`owner ${owner.account.address} stores a ${secret.length}-byte secret, 3-of-5, in cluster ${c1!.id}`);
    const stored = await storeVaultSecret(v.ctx, owner, secret);
    reporter.detail(`token ${stored.tokenId}: each share sealed (HPKE) to its slot enclave; cluster ${c1!.id} synced (SecretSynced)`);
    await awaitSynced(v.ctx, stored.tokenId, c2!.id);
    reporter.step(`cluster ${c2!.id} fetched its shares from the same slots of cluster ${c1!.id} and synced too`);
    await v.net.stop(0, 1);
    await v.net.stop(0, 4);
    reporter.step(`two enclaves of cluster ${c1!.id} stopped (slots 1 and 4)`);
    const got = await retrieveVaultSecret(v.ctx, v.chain.accounts.requester, stored.tokenId, { clusters: [c1!.id] });
    const retrieved = new TextDecoder().decode(got) === new TextDecoder().decode(secret);
    reporter.detail(`the owner retrieved the secret from the 3 remaining enclaves: ${retrieved ? "identical" : "DIFFERENT"}`);
    const stranger = v.chain.accounts.operators[3]!;
    const refusedStranger = await retrieveVaultSecret(v.ctx, stranger, stored.tokenId).then(() => "released", (e: { reason?: string; code?: string }) => e.reason ?? e.code ?? "refused");
    reporter.step(`a non-owner (${stranger.address}) asks: ${refusedStranger}`);
    await transferVaultSecret(v.ctx, owner, stored.tokenId, stranger.address);
    reporter.step(`the owner transfers token ${stored.tokenId} to ${stranger.address}`);
    const refusedOld = await retrieveVaultSecret(v.ctx, v.chain.accounts.requester, stored.tokenId).then(() => "released", (e: { reason?: string; code?: string }) => e.reason ?? e.code ?? "refused");
    reporter.detail(`the old owner asks: ${refusedOld}`);
    const newOwner = new TextDecoder().decode(await retrieveVaultSecret(v.ctx, stranger, stored.tokenId)) === new TextDecoder().decode(secret);
    reporter.detail(`the new owner retrieves it: ${newOwner ? "identical" : "DIFFERENT"}`);
    const ok = retrieved && newOwner && refusedStranger === "WRONG_OWNER" && refusedOld === "WRONG_OWNER";
    if (values.json) printJson({ token: stored.tokenId.toString(), clusters: v.net.clusters.map((c) => c.id.toString()), retrievedWithTwoDown: retrieved, nonOwner: refusedStranger, oldOwner: refusedOld, newOwnerRetrieved: newOwner, ok });
    reporter.step(ok ? "done: only the owner of record ever got the secret" : "something did not go as expected (see above)");
    return ok ? 0 : 1;
  } finally {
    await v.close();
  }
}
