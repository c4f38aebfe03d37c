/**
 * An in-process EVM chain on Hardhat 3's EDR: no network, no compiler
 * download. With a `dataDir` it persists through a block journal (see
 * block-journal.ts) and comes back with the same blocks after a restart.
 */
import "./edr-allocator.ts";
import { fileURLToPath } from "node:url";
import { createHardhatRuntimeEnvironment } from "hardhat/hre";
import type { Chain, Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { BlockJournal, type JournalHeader } from "./block-journal.ts";
import { chainDefinition } from "./clients.ts";
import { allDevKeys, devAccountBalance, devAccounts, devPrivateKeys, devUserCount, devUserKeys, type DevKeys } from "./dev-accounts.ts";
import type { Eip1193MessageEvents, Eip1193Provider } from "./eip1193.ts";
import { journaledProvider, replayJournal, type JournaledProvider } from "./journaled-provider.ts";
import { CloisterError } from "../util/base-error.ts";

/** Cancun is what the contracts are compiled for (OpenZeppelin 5 needs mcopy and transient storage). */
export const localChainHardfork = "cancun";
export const defaultLocalChainId = 31337;
export const defaultOperatorCount = 3;

/** Hardhat wants a project root (a directory with a package.json); Cloister's own works from any cwd. */
const packageRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface LocalChainOptions {
  /** Persist the chain under this directory (chain.json + blocks.jsonl) and resume from it. */
  dataDir?: string;
  chainId?: number;
  /** Funded operator accounts (default 3). Fixed at creation for a persistent chain. */
  operators?: number;
}

export interface LocalChain {
  /** Also EDR's "message" events, which carry eth_subscribe notifications (new heads, logs). */
  provider: Eip1193Provider & Eip1193MessageEvents;
  chainId: number;
  /** viem chain definition for clients. */
  chain: Chain;
  /** Funded development accounts (well-known keys: local use only). */
  accounts: DevKeys<PrivateKeyAccount>;
  privateKeys: DevKeys<Hex>;
  /** The user accounts (devUserKeys) the genesis funded: 10 on a chain made since they exist, else 0. */
  fundedUsers: number;
  /** Blocks replayed from the data dir at start (0 for a new chain). */
  replayedBlocks: number;
  close(): Promise<void>;
}

export class LocalChainError extends CloisterError<"LOCAL_CHAIN"> {
  constructor(message: string) {
    super("LOCAL_CHAIN", message);
  }
}

export async function startLocalChain(options: LocalChainOptions = {}): Promise<LocalChain> {
  const chainId = options.chainId ?? defaultLocalChainId;
  const fresh: JournalHeader = {
    version: 1,
    chainId,
    hardfork: localChainHardfork,
    genesisTimestamp: Math.floor(Date.now() / 1000),
    operators: options.operators ?? defaultOperatorCount,
    users: devUserCount,
  };
  const opened = options.dataDir === undefined ? undefined : BlockJournal.open(options.dataDir, fresh);
  const header = opened?.header ?? fresh;
  if (options.operators !== undefined && options.operators !== header.operators) {
    throw new LocalChainError(
      `the chain in ${options.dataDir} was created with ${header.operators} operator accounts, not ${options.operators}; omit the option or use a new data dir`,
    );
  }

  const privateKeys = devPrivateKeys(header.operators);
  // The genesis must be the one the journal was made on, so a chain made before user accounts existed gets none.
  const fundedUsers = header.users ?? 0;
  const genesisKeys = [...allDevKeys(privateKeys), ...devUserKeys().slice(0, fundedUsers)];
  const hre = await createHardhatRuntimeEnvironment(
    {
      networks: {
        default: {
          type: "edr-simulated",
          chainId,
          hardfork: header.hardfork,
          initialDate: new Date(header.genesisTimestamp * 1000),
          // Blocks mined within one second share its timestamp, so the chain clock follows wall time under
          // load instead of running ahead by a second per block (and expiring deadlines early).
          allowBlocksWithSameTimestamp: true,
          // eth_estimateGas as Ethereum clients do it: the transaction must succeed, not every call inside it.
          // The market gives a payee bounded gas; one that burns it all must not make settlement unestimable.
          gasEstimationMode: "topLevelSuccess",
          // FIFO keeps a replayed block's transactions in their journaled order.
          mining: { auto: true, mempool: { order: "fifo" } },
          accounts: genesisKeys.map((privateKey) => ({ privateKey, balance: devAccountBalance })),
        },
      },
    },
    {},
    packageRoot,
  );
  const connection = await hre.network.connect();
  const edr = connection.provider as Eip1193Provider & Eip1193MessageEvents;

  let journaled: JournaledProvider | undefined;
  if (opened) {
    try {
      await replayJournal(edr, opened.blocks);
    } catch (err) {
      await connection.close();
      throw err;
    }
    journaled = journaledProvider(edr, opened.journal, opened.blocks.length);
  }
  const provider = journaled ?? edr;

  let closed = false;
  return {
    provider: {
      request(args) {
        if (closed) return Promise.reject(new LocalChainError("the local chain is closed; start a new one"));
        return provider.request(args);
      },
      on: (event, listener) => edr.on(event, listener),
      removeListener: (event, listener) => edr.removeListener(event, listener),
    },
    chainId,
    chain: chainDefinition(chainId),
    accounts: devAccounts(privateKeys),
    privateKeys,
    fundedUsers,
    replayedBlocks: opened?.blocks.length ?? 0,
    async close() {
      if (closed) return;
      closed = true;
      await journaled?.drain();
      await connection.close();
    },
  };
}
