/**
 * The persistent form of the local chain. EDR keeps state in memory, so every
 * mined block is appended to `<dataDir>/blocks.jsonl` (number, timestamp, hash
 * and the raw signed transactions in order); `<dataDir>/chain.json` holds what
 * the genesis depends on. Replaying the journal into a fresh EDR instance with
 * the same genesis rebuilds the same chain, block hash for block hash.
 *
 * Appends are not fsync'ed: the journal survives a killed process (the OS has
 * the bytes) but not a power loss. A torn last line is dropped on open.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Hex } from "viem";
import { CloisterError } from "../util/base-error.ts";

export interface JournalHeader {
  version: 1;
  chainId: number;
  hardfork: string;
  /** Unix seconds of the genesis block. */
  genesisTimestamp: number;
  /** Number of funded operator accounts in the genesis state. */
  operators: number;
  /** Number of funded user accounts (dev-accounts.ts, devUserKeys) in the genesis state; absent in chains made before there were any. */
  users?: number;
}

export interface JournaledBlock {
  number: number;
  timestamp: number;
  hash: Hex;
  /** Raw signed transactions, in block order. */
  txs: Hex[];
}

export class ChainJournalError extends CloisterError<"CHAIN_JOURNAL"> {
  constructor(message: string) {
    super("CHAIN_JOURNAL", message);
  }
}

export interface OpenedJournal {
  header: JournalHeader;
  blocks: JournaledBlock[];
  journal: BlockJournal;
}

export class BlockJournal {
  readonly blocksPath: string;

  private constructor(blocksPath: string) {
    this.blocksPath = blocksPath;
  }

  /** Opens the journal in `dataDir`, creating it with `header` when there is none. */
  static open(dataDir: string, header: JournalHeader): OpenedJournal {
    mkdirSync(dataDir, { recursive: true });
    const headerPath = join(dataDir, "chain.json");
    const blocksPath = join(dataDir, "blocks.jsonl");
    if (!existsSync(headerPath)) {
      writeFileSync(headerPath, `${JSON.stringify(header, null, 2)}\n`);
      writeFileSync(blocksPath, "");
      return { header, blocks: [], journal: new BlockJournal(blocksPath) };
    }
    const stored = parseHeader(headerPath);
    if (stored.chainId !== header.chainId) {
      throw new ChainJournalError(
        `chain data in ${dataDir} is for chain id ${stored.chainId}, not ${header.chainId}; use another data dir or the same chain id`,
      );
    }
    return { header: stored, blocks: readBlocks(blocksPath), journal: new BlockJournal(blocksPath) };
  }

  append(block: JournaledBlock): void {
    appendFileSync(this.blocksPath, `${JSON.stringify(block)}\n`);
  }
}

function parseHeader(path: string): JournalHeader {
  const h = JSON.parse(readFileSync(path, "utf8")) as Partial<JournalHeader>;
  if (h.version !== 1 || typeof h.chainId !== "number" || typeof h.hardfork !== "string" || typeof h.genesisTimestamp !== "number" || typeof h.operators !== "number") {
    throw new ChainJournalError(`${path} is not a Cloister chain header (version 1); move the directory away to start a new chain`);
  }
  return h as JournalHeader;
}

function readBlocks(path: string): JournaledBlock[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, "utf8");
  const lines = text.split("\n");
  // Every complete line ends with "\n"; what follows the last one is a torn write, dropped.
  const torn = lines.pop() ?? "";
  if (torn !== "") truncateSync(path, Buffer.byteLength(text) - Buffer.byteLength(torn));
  return lines.map((line, i) => {
    let block: JournaledBlock;
    try {
      block = JSON.parse(line) as JournaledBlock;
    } catch {
      throw new ChainJournalError(`${path}: line ${i + 1} is not valid JSON; the journal is corrupt`);
    }
    if (block.number !== i + 1) {
      throw new ChainJournalError(`${path}: line ${i + 1} holds block ${block.number}, expected ${i + 1}; the journal is corrupt`);
    }
    return block;
  });
}
