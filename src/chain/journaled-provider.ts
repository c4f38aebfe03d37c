/**
 * An EIP-1193 provider over EDR that appends every mined block to a
 * BlockJournal, and the replay that rebuilds a chain from that journal.
 *
 * Transactions are journaled as the raw bytes the client sent
 * (eth_sendRawTransaction). A transaction EDR signed itself
 * (eth_sendTransaction with a configured account) is re-serialized from its
 * RPC form, and the result must hash to the transaction hash or nothing is
 * written. Requests that change state outside a block cannot be replayed and
 * are refused.
 */
import { formatTransaction, serializeTransaction, toHex, type Hex, type RpcTransaction } from "viem";
import { keccak256 } from "../crypto/keccak.ts";
import { ChainJournalError, type BlockJournal, type JournaledBlock } from "./block-journal.ts";
import type { Eip1193Provider } from "./eip1193.ts";

const MINING_METHODS = new Set(["eth_sendRawTransaction", "eth_sendTransaction", "evm_mine", "hardhat_mine"]);

const UNREPLAYABLE_METHODS = new Set([
  "evm_revert",
  "evm_setIntervalMining",
  "hardhat_reset",
  "hardhat_setBalance",
  "hardhat_setCode",
  "hardhat_setNonce",
  "hardhat_setStorageAt",
  "hardhat_impersonateAccount",
  "hardhat_setCoinbase",
  "hardhat_setPrevRandao",
  "hardhat_setNextBlockBaseFeePerGas",
  "hardhat_setMinGasPrice",
]);

interface RpcBlockHead {
  number: Hex;
  hash: Hex;
  timestamp: Hex;
  transactions: Hex[];
}

function getBlock(provider: Eip1193Provider, tag: Hex | "latest"): Promise<RpcBlockHead> {
  return provider.request({ method: "eth_getBlockByNumber", params: [tag, false] }) as Promise<RpcBlockHead>;
}

export interface JournaledProvider extends Eip1193Provider {
  /** Resolves once every mining request made so far is journaled. */
  drain(): Promise<void>;
}

/** Wraps `inner` so that each block mined through it is appended to `journal`. */
export function journaledProvider(inner: Eip1193Provider, journal: BlockJournal, journaledHead: number): JournaledProvider {
  const rawByHash = new Map<Hex, Hex>();
  let head = journaledHead;
  let queue: Promise<unknown> = Promise.resolve();

  async function rawTransaction(hash: Hex): Promise<Hex> {
    const sent = rawByHash.get(hash);
    if (sent) {
      rawByHash.delete(hash);
      return sent;
    }
    const rpcTx = (await inner.request({ method: "eth_getTransactionByHash", params: [hash] })) as RpcTransaction;
    const tx = formatTransaction(rpcTx);
    const raw = serializeTransaction(tx as Parameters<typeof serializeTransaction>[0], {
      r: tx.r,
      s: tx.s,
      ...(tx.yParity === undefined ? { v: tx.v } : { yParity: tx.yParity }),
    });
    if (keccak256(raw) !== hash) {
      throw new ChainJournalError(`cannot journal transaction ${hash}: its re-serialized form does not match; send it signed (eth_sendRawTransaction)`);
    }
    return raw;
  }

  async function recordNewBlocks(): Promise<void> {
    // Usually the one block just mined: the latest block is read once and serves as the last of the range.
    const latest = await getBlock(inner, "latest");
    const latestNumber = Number(latest.number);
    for (let n = head + 1; n <= latestNumber; n++) {
      const block = n === latestNumber ? latest : await getBlock(inner, toHex(n));
      const txs: Hex[] = [];
      for (const hash of block.transactions) txs.push(await rawTransaction(hash));
      const entry: JournaledBlock = { number: n, timestamp: Number(block.timestamp), hash: block.hash, txs };
      journal.append(entry);
      head = n;
    }
  }

  return {
    request(args) {
      if (UNREPLAYABLE_METHODS.has(args.method)) {
        return Promise.reject(
          new ChainJournalError(`${args.method} changes state outside a block and cannot be replayed; it is disabled on a persistent chain (started with a dataDir)`),
        );
      }
      if (!MINING_METHODS.has(args.method)) return inner.request(args);
      // Mining requests run one at a time so blocks are journaled in order, even when the request fails
      // (EDR mines a reverting transaction and then reports the revert).
      const run = queue.then(async () => {
        try {
          if (args.method !== "eth_sendRawTransaction") return await inner.request(args);
          const raw = (args.params as readonly Hex[])[0]!;
          // The chain answers with the transaction's hash, so the journal need not hash every raw transaction
          // (keccak over batch calldata in JavaScript was a tenth of the chain server's thread under load).
          try {
            const hash = (await inner.request(args)) as Hex;
            rawByHash.set(hash, raw);
            return hash;
          } catch (error) {
            // A reverting transaction may have been mined all the same: keep it under its hash.
            rawByHash.set(keccak256(raw), raw);
            throw error;
          }
        } finally {
          await recordNewBlocks();
        }
      });
      queue = run.catch(() => undefined);
      return run;
    },
    async drain() {
      await queue;
    },
  };
}

/**
 * Re-mines the journaled blocks into a fresh chain with the same genesis. Each
 * block must come out with its journaled hash, or the data dir does not belong
 * to this chain configuration.
 */
export async function replayJournal(provider: Eip1193Provider, blocks: readonly JournaledBlock[]): Promise<void> {
  if (blocks.length === 0) return;
  await provider.request({ method: "evm_setAutomine", params: [false] });
  for (const block of blocks) {
    for (const raw of block.txs) await provider.request({ method: "eth_sendRawTransaction", params: [raw] });
    await provider.request({ method: "evm_setNextBlockTimestamp", params: [block.timestamp] });
    await provider.request({ method: "evm_mine", params: [] });
    const mined = await getBlock(provider, "latest");
    if (mined.hash !== block.hash) {
      throw new ChainJournalError(
        `replaying block ${block.number} gave hash ${mined.hash}, the journal has ${block.hash}; the chain data was made by another configuration or is corrupt`,
      );
    }
  }
  await provider.request({ method: "evm_setAutomine", params: [true] });
  // Replay pinned the clock to the last block's time; move it forward over the downtime.
  const last = blocks[blocks.length - 1]!;
  const behind = Math.floor(Date.now() / 1000) - last.timestamp;
  if (behind > 0) await provider.request({ method: "evm_increaseTime", params: [behind] });
}
