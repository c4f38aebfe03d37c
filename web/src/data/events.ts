/**
 * One contract's events, read from its deployment block on and kept: each
 * refresh asks the chain only for the blocks it has not seen (in ranges of at
 * most RANGE blocks, as public nodes cap eth_getLogs), so a live page costs
 * one eth_getLogs per contract and new block.
 */
import type { Abi, Address, Hex } from "viem";
import { getContractEvents } from "viem/actions";
import type { Reader } from "../chain.ts";

export interface ChainEvent<A = Record<string, unknown>> {
  eventName: string;
  args: A;
  blockNumber: bigint;
  transactionHash: Hex;
  logIndex: number;
}

const RANGE = 10_000n;

export class EventLog {
  readonly address: Address;
  readonly #client: Reader;
  readonly #abi: Abi;
  #next: bigint;
  #events: ChainEvent[] = [];
  #pending: Promise<void> | undefined;

  constructor(client: Reader, address: Address, abi: Abi, fromBlock: bigint) {
    this.#client = client;
    this.address = address;
    this.#abi = abi;
    this.#next = fromBlock;
  }

  /** Reads the events up to `toBlock`; concurrent calls share one read. */
  refresh(toBlock: bigint): Promise<void> {
    this.#pending ??= this.#read(toBlock).finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async #read(toBlock: bigint): Promise<void> {
    while (this.#next <= toBlock) {
      const end = this.#next + RANGE - 1n < toBlock ? this.#next + RANGE - 1n : toBlock;
      const logs = await getContractEvents(this.#client, { address: this.address, abi: this.#abi, fromBlock: this.#next, toBlock: end, strict: false });
      for (const log of logs as unknown as ChainEvent[]) {
        this.#events.push({ eventName: log.eventName, args: log.args, blockNumber: log.blockNumber, transactionHash: log.transactionHash, logIndex: log.logIndex });
      }
      this.#next = end + 1n;
    }
  }

  all(): readonly ChainEvent[] {
    return this.#events;
  }

  /** The events of one name, in chain order, with their arguments typed as the caller says. */
  named<A>(eventName: string): ChainEvent<A>[] {
    return this.#events.filter((e) => e.eventName === eventName) as unknown as ChainEvent<A>[];
  }
}

/** Block timestamps (Unix seconds), read once each. */
export class BlockTimes {
  readonly #client: Reader;
  readonly #times = new Map<bigint, Promise<number>>();

  constructor(client: Reader) {
    this.#client = client;
  }

  of(block: bigint): Promise<number> {
    let t = this.#times.get(block);
    if (!t) {
      t = this.#client.getBlock({ blockNumber: block }).then((b) => Number(b.timestamp));
      t.catch(() => this.#times.delete(block));
      this.#times.set(block, t);
    }
    return t;
  }
}
