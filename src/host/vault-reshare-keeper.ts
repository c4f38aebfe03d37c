/**
 * Re-shares a cluster's tokens after one of its members is replaced (issue 15
 * item 5), with no call from anyone: the replaced enclave held a share of
 * every token it confirmed, and the same share as the same slot of every
 * other cluster, so each of those tokens gets new shares (same secret,
 * version + 1) and the old share set stops matching the chain.
 *
 * It follows the chain only: `ClusterMemberReplaced(cluster)` names the
 * previous enclave, its `ShareConfirmed` logs name the tokens it held, and a
 * `SecretReshared` of a token after the replacement (in any cluster) means
 * that token is done. Nothing is kept on disk: a restarted keeper rescans
 * from `fromBlock` and continues with what the chain does not show done.
 *
 * Who deals: the host that supervises every current member of the cluster
 * (an enclave has one host, so at most one host qualifies). It re-shares a
 * token only when every member is past bootstrap and holds the token's
 * current version: every member must accept its new share, or the cluster
 * could not confirm the new version and no cluster could sync it.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Address } from "viem";
import { isAfter, readConfirmedBy, readMemberReplacements, readReshares, type LogPosition } from "../chain/actions/read-reshare-log.ts";
import { readCluster } from "../chain/actions/read-cluster.ts";
import { readSecret } from "../chain/actions/read-secret.ts";
import type { ReaderClient } from "../chain/clients.ts";
import type { VaultEnclaveClient } from "../enclave/vault/client.ts";

/** What the keeper needs of the host of the cluster's enclaves (a VaultHost). */
export interface ReshareHost {
  readonly enclaves: VaultEnclaveClient[];
  reshare(tokenId: bigint, cluster: bigint): Promise<{ version: bigint; newRoot: `0x${string}`; transactionHash: `0x${string}` }>;
}

export type VaultReshareEvent =
  | { type: "reshare-needed"; cluster: string; slot: number; previous: Address; block: string; tokens: number }
  | { type: "reshare-waiting"; cluster: string; tokens: number; reason: string }
  | { type: "reshared"; cluster: string; tokenId: string; version: string; newRoot: string; transactionHash: string; left: number }
  /** A token's re-share failed, or (without tokenId) a whole pass (e.g. the chain did not answer); retried next pass. */
  | { type: "reshare-failed"; cluster: string; tokenId?: string; code: string; message: string };

export interface VaultReshareKeeperOptions {
  reader: ReaderClient;
  vault: Address;
  cluster: bigint;
  host: ReshareHost;
  /** The first block to scan (the vault's deployment block; default 0). */
  fromBlock?: bigint;
  /** Blocks per eth_getLogs (default 2,000). */
  logRange?: bigint;
  onEvent?: (e: VaultReshareEvent) => void;
}

export class VaultReshareKeeper {
  readonly #o: Required<Omit<VaultReshareKeeperOptions, "onEvent">> & Pick<VaultReshareKeeperOptions, "onEvent">;
  /** The last block scanned. */
  #scanned: bigint;
  /** Token → the latest replacement of a member that held it: it is done once re-shared after that. */
  readonly #owed = new Map<bigint, LogPosition>();
  readonly #lastReshare = new Map<bigint, LogPosition>();
  #waiting = "";
  #running: Promise<void> | undefined;
  #stop: AbortController | undefined;

  constructor(options: VaultReshareKeeperOptions) {
    this.#o = { fromBlock: 0n, logRange: 2_000n, ...options };
    this.#scanned = this.#o.fromBlock - 1n;
  }

  #emit(e: VaultReshareEvent): void {
    this.#o.onEvent?.(e);
  }

  async #ranges(from: bigint, to: bigint, each: (from: bigint, to: bigint) => Promise<void>): Promise<void> {
    for (let a = from; a <= to; a += this.#o.logRange) await each(a, a + this.#o.logRange - 1n < to ? a + this.#o.logRange - 1n : to);
  }

  /** Reads the chain up to the head: new replacements (and the tokens their previous members held), new re-shares. */
  async #scan(): Promise<void> {
    const { reader, vault, cluster } = this.#o;
    const head = await reader.getBlockNumber();
    await this.#ranges(this.#scanned + 1n, head, async (from, to) => {
      for (const r of await readMemberReplacements(reader, vault, cluster, from, to)) {
        const held = new Set<bigint>();
        await this.#ranges(this.#o.fromBlock, r.block, async (a, b) => {
          for (const id of await readConfirmedBy(reader, vault, cluster, r.previous, a, b)) held.add(id);
        });
        for (const id of held) {
          const owed = this.#owed.get(id);
          if (!owed || isAfter(r, owed)) this.#owed.set(id, r);
        }
        this.#emit({ type: "reshare-needed", cluster: String(cluster), slot: r.slot, previous: r.previous, block: String(r.block), tokens: held.size });
      }
      for (const r of await readReshares(reader, vault, from, to)) this.#lastReshare.set(r.tokenId, r);
      this.#scanned = to;
    });
    for (const [id, owed] of this.#owed) {
      const last = this.#lastReshare.get(id);
      if (last && isAfter(last, owed)) this.#owed.delete(id);
    }
  }

  /**
   * Why the cluster cannot re-share anything yet (a member not supervised here, silent or bootstrapping), with
   * its members' enclaves when it can. Asked before any per-token read: while a replacement bootstraps, a pass
   * costs a status call per member, not a record read per owed token (thousands, every pass).
   */
  async #clusterNotReady(): Promise<{ reason: string } | { enclaves: VaultEnclaveClient[] }> {
    const { members } = await readCluster(this.#o.reader, this.#o.vault, this.#o.cluster);
    const byAddress = new Map(this.#o.host.enclaves.map((e) => [e.identity.signer.toLowerCase(), e]));
    const enclaves: VaultEnclaveClient[] = [];
    for (const [slot, member] of members.entries()) {
      const enclave = byAddress.get(member.toLowerCase());
      if (!enclave) return { reason: `slot ${slot} (${member}) is not supervised by this host; the host that supervises every member of cluster ${this.#o.cluster} re-shares` };
      const status = await enclave.status().catch(() => undefined);
      if (!status) return { reason: `slot ${slot} (${member}) does not answer; start it` };
      if (status.state === "bootstrapping") return { reason: `slot ${slot} (${member}) is still bootstrapping` };
      enclaves.push(enclave);
    }
    return { enclaves };
  }

  /** Which of `tokens` some member does not hold at that version yet, and why. */
  async #notHeld(enclaves: readonly VaultEnclaveClient[], tokens: { tokenId: bigint; version: bigint }[]): Promise<Map<bigint, string>> {
    const reasons = new Map<bigint, string>();
    for (const [slot, enclave] of enclaves.entries()) {
      const { tokenIds } = await enclave.missing({ tokens });
      for (const id of tokenIds) reasons.set(id, `slot ${slot} (${enclave.identity.signer}) does not hold the current version yet`);
    }
    return reasons;
  }

  /** Reports why tokens wait, when the reason changed since the last pass. */
  #reportWaiting(tokens: number, reason: string): void {
    if (reason !== this.#waiting && tokens > 0) this.#emit({ type: "reshare-waiting", cluster: String(this.#o.cluster), tokens, reason });
    this.#waiting = reason;
  }

  /** One pass: scan, then re-share every owed token the cluster is ready for. Failures are reported and retried next pass. */
  async once(): Promise<{ reshared: number; owed: number }> {
    await this.#scan();
    if (this.#owed.size === 0) return { reshared: 0, owed: 0 };
    const ready = await this.#clusterNotReady();
    if ("reason" in ready) {
      this.#reportWaiting(this.#owed.size, ready.reason);
      return { reshared: 0, owed: this.#owed.size };
    }
    const cluster = String(this.#o.cluster);
    const records = await Promise.all([...this.#owed.keys()].sort((a, b) => (a < b ? -1 : 1)).map((id) => readSecret(this.#o.reader, this.#o.vault, id)));
    const live = records.filter((r) => {
      if (r.threshold === 0 || r.burned) this.#owed.delete(r.tokenId);
      return this.#owed.has(r.tokenId);
    });
    if (live.length === 0) return { reshared: 0, owed: 0 };
    const notReady = await this.#notHeld(ready.enclaves, live.map((r) => ({ tokenId: r.tokenId, version: r.version })));
    let reshared = 0;
    for (const r of live) {
      // A stop waits for the token in hand only, not for a whole cluster's worth of re-shares.
      if (this.#stop?.signal.aborted) break;
      if (notReady.has(r.tokenId)) continue;
      try {
        const done = await this.#o.host.reshare(r.tokenId, this.#o.cluster);
        this.#owed.delete(r.tokenId);
        reshared++;
        this.#emit({ type: "reshared", cluster, tokenId: String(r.tokenId), version: String(done.version), newRoot: done.newRoot, transactionHash: done.transactionHash, left: this.#owed.size });
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        this.#emit({ type: "reshare-failed", cluster, tokenId: String(r.tokenId), code: typeof code === "string" ? code : "INTERNAL", message: String((e as Error).message) });
      }
    }
    // Waiting is reported when its reason changes, not every pass.
    this.#reportWaiting(notReady.size, [...new Set(notReady.values())].join("; "));
    return { reshared, owed: this.#owed.size };
  }

  /** Runs a pass every `intervalMs` until stopped (one at a time). */
  start(intervalMs = 500): void {
    if (this.#running) return;
    const stop = new AbortController();
    this.#stop = stop;
    this.#running = (async () => {
      while (!stop.signal.aborted) {
        await delay(intervalMs, undefined, { signal: stop.signal }).catch(() => {});
        if (stop.signal.aborted) return;
        await this.once().catch((e: unknown) => this.#emit({ type: "reshare-failed", cluster: String(this.#o.cluster), code: String((e as { code?: unknown }).code ?? "INTERNAL"), message: String((e as Error).message) }));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stop?.abort();
    await this.#running;
    this.#running = undefined;
  }
}
