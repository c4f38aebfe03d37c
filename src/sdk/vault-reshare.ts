/**
 * Asking a vault cluster to re-share (same secret, new shares, version + 1)
 * from another process, through the gateway of the hosts
 * (`POST /v1/vault/reshare`, src/host/vault-http.ts): one token, or every
 * token the cluster holds and has synced. The host of the cluster deals; the
 * caller only sees public ids, versions, roots and transaction hashes. After a
 * member replacement the hosts' keepers do this on their own
 * (src/host/vault-reshare-keeper.ts); this is for an operator who wants a
 * refresh now.
 */
import { readCluster } from "../chain/actions/read-cluster.ts";
import { readSecret } from "../chain/actions/read-secret.ts";
import { readSync } from "../chain/actions/read-sync.ts";
import { vaultJsonDecode, vaultJsonEncode, type VaultGatewayReshare } from "../host/vault-http.ts";
import { CloisterError } from "../util/base-error.ts";
import { VaultRemoteError } from "./vault-http-client.ts";
import type { VaultContext } from "./vault.ts";

export type VaultReshareErrorCode = "UNKNOWN_TOKEN" | "UNKNOWN_CLUSTER" | "NOT_SYNCED" | "NO_MEMBER_ANSWERS";

export class VaultReshareError extends CloisterError<VaultReshareErrorCode> {}

/** The gateway's reshare: failures come back with the host's code (e.g. ENCLAVE_UNKNOWN, a contract error). */
export function httpVaultReshare(baseUrl: string): VaultGatewayReshare {
  return async (p) => {
    let response: Response;
    try {
      response = await fetch(`${baseUrl}/v1/vault/reshare`, { method: "POST", headers: { "content-type": "application/json" }, body: vaultJsonEncode({ params: p }) });
    } catch (cause) {
      throw new VaultRemoteError("PEER_UNREACHABLE", `the vault gateway ${baseUrl} does not answer; is the devnet up?`, { cause });
    }
    const answer = vaultJsonDecode(await response.text()) as { result: Awaited<ReturnType<VaultGatewayReshare>> } | { error: { code: string; message: string } };
    if ("result" in answer) return answer.result;
    if (answer.error.code === "NOT_FOUND") throw new VaultRemoteError("NOT_FOUND", `the vault gateway ${baseUrl} does not re-share (a devnet from before 'vault reshare'); restart it`);
    throw new VaultRemoteError(answer.error.code, answer.error.message);
  };
}

export interface ReshareOutcome {
  tokenId: bigint;
  version: bigint;
  newRoot: `0x${string}`;
  transactionHash: `0x${string}`;
}

/** Re-shares `tokenId` in `cluster`, which must hold its current version (synced there). */
export async function reshareVaultSecret(ctx: Pick<VaultContext, "reader" | "vault">, reshare: VaultGatewayReshare, tokenId: bigint, cluster: bigint): Promise<ReshareOutcome> {
  const [record, c] = await Promise.all([readSecret(ctx.reader, ctx.vault, tokenId), readCluster(ctx.reader, ctx.vault, cluster)]);
  if (record.threshold === 0 || record.burned) throw new VaultReshareError("UNKNOWN_TOKEN", `token ${tokenId} is not in vault ${ctx.vault}, or was burned`);
  if (c.size === 0) throw new VaultReshareError("UNKNOWN_CLUSTER", `cluster ${cluster} does not exist; 'cloister vault status ${tokenId}' lists the token's clusters`);
  if (!(await readSync(ctx.reader, ctx.vault, tokenId, cluster)).synced) {
    throw new VaultReshareError("NOT_SYNCED", `cluster ${cluster} has not synced version ${record.version} of token ${tokenId}; wait for it ('cloister vault status ${tokenId}') or name a cluster that has`, {
      details: { tokenId: String(tokenId), cluster: String(cluster), version: String(record.version) },
    });
  }
  return { tokenId, ...(await reshare({ tokenId, cluster })) };
}

export interface ClusterReshare {
  reshared: ReshareOutcome[];
  /** Tokens a member holds that were not re-shared, and why (not synced in the cluster, or the host failed). */
  skipped: { tokenId: bigint; code: string; message: string }[];
}

/**
 * Re-shares every live token `cluster` holds (a member's listing, paged) and has synced. A token that fails is
 * reported and the rest go on; running it again re-shares everything once more (it is a refresh).
 */
export async function reshareVaultCluster(ctx: VaultContext, reshare: VaultGatewayReshare, cluster: bigint, onProgress?: (done: number, total: number, last: ReshareOutcome | ClusterReshare["skipped"][number]) => void): Promise<ClusterReshare> {
  const { size, members } = await readCluster(ctx.reader, ctx.vault, cluster);
  if (size === 0) throw new VaultReshareError("UNKNOWN_CLUSTER", `cluster ${cluster} does not exist; 'cloister devnet up --clusters C' prints the clusters`);
  const tokens = await listHeld(ctx, members);
  const out: ClusterReshare = { reshared: [], skipped: [] };
  for (const tokenId of tokens) {
    try {
      const r = await reshareVaultSecret(ctx, reshare, tokenId, cluster);
      out.reshared.push(r);
      onProgress?.(out.reshared.length + out.skipped.length, tokens.length, r);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      const skipped = { tokenId, code: typeof code === "string" ? code : "INTERNAL", message: String((e as Error).message) };
      out.skipped.push(skipped);
      onProgress?.(out.reshared.length + out.skipped.length, tokens.length, skipped);
    }
  }
  return out;
}

/** Every token id the first member that answers holds. */
async function listHeld(ctx: VaultContext, members: readonly `0x${string}`[]): Promise<bigint[]> {
  let failure: unknown;
  for (const member of members) {
    const node = ctx.directory.node(member);
    if (!node) continue;
    try {
      const ids: bigint[] = [];
      for (let after: bigint | null = null; ; ) {
        const { tokens } = await node.held({ after, limit: 500 });
        if (tokens.length === 0) return ids;
        ids.push(...tokens.map((t) => t.tokenId));
        after = tokens.at(-1)!.tokenId;
      }
    } catch (e) {
      failure = e; // try the next member
    }
  }
  throw new VaultReshareError("NO_MEMBER_ANSWERS", "no member of the cluster listed its tokens through the gateway; is the devnet up?", { cause: failure });
}
