/**
 * Drives the node's registration (attestation-lifecycle.ts) from the chain: it reads the latest block (the
 * chain's clock) and the registry's events for this enclave, moves the state machine when the renewal
 * point or the expiry passes or a revocation appears, and re-attests when the renewal is due, retrying with
 * backoff while the attestation service cannot be reached. The expiry it holds is always the registry's
 * (from the EnclaveRegistered event of the registration's transaction), never a local guess.
 */
import { decodeEventLog, getAbiItem, pad, toEventSelector, toHex, type Address, type Client, type EIP1193RequestFn, type Hex, type PublicRpcSchema } from "viem";
import { getBlock, waitForTransactionReceipt } from "viem/actions";
import { enclaveRegistryAbi } from "../chain/abi/EnclaveRegistry.ts";
import { AttestationLifecycle, type RegistrationEvent, type RegistrationSnapshot, type RegistrationState } from "./attestation-lifecycle.ts";
import { backoffDelay } from "../util/backoff.ts";
import { CloisterError } from "../util/base-error.ts";

export interface RegistrationKeeperOptions {
  reader: Client;
  registry: Address;
  /** This node's enclave (its signer address). */
  enclave: Address;
  /** Attests the enclave and has it registered (the node's one call to attest); resolves with the registration's transaction. */
  attestAndRegister: () => Promise<{ transactionHash: Hex }>;
  /** How often the chain is read (default 5000 ms). */
  pollIntervalMs?: number;
  /** First wait before a failed renewal is tried again (default 1000 ms); it doubles per failure. */
  retryBaseMs?: number;
  /** Longest wait between renewal attempts (default 60 000 ms). */
  retryMaxMs?: number;
  renewAtFraction?: number;
  onTransition?: (from: RegistrationState, to: Readonly<RegistrationSnapshot>, event: RegistrationEvent) => void;
  /** A read of the chain failed; the keeper reads again on its next round. */
  onError: (error: unknown) => void;
}

export class RegistrationLookupError extends CloisterError<"REGISTRATION_LOOKUP"> {
  constructor(message: string) {
    super("REGISTRATION_LOOKUP", message);
  }
}

const registeredEvent = getAbiItem({ abi: enclaveRegistryAbi, name: "EnclaveRegistered" });
const revokedEvent = getAbiItem({ abi: enclaveRegistryAbi, name: "EnclaveRevoked" });
const registeredTopic = toEventSelector(registeredEvent);
const revokedTopic = toEventSelector(revokedEvent);

export class RegistrationKeeper {
  readonly #o: RegistrationKeeperOptions;
  readonly lifecycle: AttestationLifecycle;
  /** The latest block whose registry events were read. */
  #readTo = 0n;
  /** The chain time the registration was last checked against, and when (wall clock, ms). */
  #checked: { chainTime: bigint; at: number } | undefined;
  #nextAttemptAt = 0;
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: RegistrationKeeperOptions) {
    this.#o = options;
    this.lifecycle = new AttestationLifecycle({ renewAtFraction: options.renewAtFraction, onTransition: options.onTransition });
  }

  /** The chain time the registration was last checked against (Unix seconds); undefined before the first check. */
  get chainTime(): bigint | undefined {
    return this.#checked?.chainTime;
  }

  /** The chain's time now, estimated from the last block read and the wall time since. */
  estimatedChainNow(): bigint {
    const checked = this.#checked;
    if (!checked) return BigInt(Math.floor(Date.now() / 1000));
    return checked.chainTime + BigInt(Math.floor((Date.now() - checked.at) / 1000));
  }

  /** The first attestation: throws (after recording the failure) when it fails, then keeps the registration. */
  async start(): Promise<void> {
    await this.#attempt({ rethrow: true });
    const latest = await getBlock(this.#o.reader, { blockTag: "latest" });
    this.#checked = { chainTime: latest.timestamp, at: Date.now() };
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#stopped && this.lifecycle.state !== "revoked") {
      try {
        await this.#check();
      } catch (error) {
        this.#o.onError(error);
      }
      if (this.#stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#o.pollIntervalMs ?? 5_000);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** One round: the chain's clock and the registry's events, then whatever transition they call for. */
  async #check(): Promise<void> {
    const latest = await getBlock(this.#o.reader, { blockTag: "latest" });
    if (latest.number > this.#readTo) {
      await this.#readEvents(latest.number);
      if (this.lifecycle.state === "revoked") return;
    }
    const now = latest.timestamp;
    const lifecycle = this.lifecycle;
    const renewAt = lifecycle.renewAt;
    if (lifecycle.state === "registered" && renewAt !== undefined && now >= renewAt) lifecycle.apply({ type: "renewal-due" });
    const expiry = lifecycle.snapshot.expiry;
    if ((lifecycle.state === "registered" || lifecycle.state === "renewing") && expiry !== undefined && now >= expiry) lifecycle.apply({ type: "expired" });
    if ((lifecycle.state === "renewing" || lifecycle.state === "expired") && Date.now() >= this.#nextAttemptAt) await this.#attempt({ rethrow: false });
    this.#checked = { chainTime: now, at: Date.now() };
  }

  /** Applies the registry's events for this enclave up to `toBlock`: a newer registration, or the revocation. */
  async #readEvents(toBlock: bigint): Promise<void> {
    const request = this.#o.reader.request as unknown as EIP1193RequestFn<PublicRpcSchema>;
    const logs = await request({
      method: "eth_getLogs",
      params: [{ address: this.#o.registry, topics: [[registeredTopic, revokedTopic], pad(this.#o.enclave.toLowerCase() as Hex)], fromBlock: toHex(this.#readTo + 1n), toBlock: toHex(toBlock) }],
    });
    for (const log of logs) {
      if (log.topics[0] === revokedTopic) {
        this.lifecycle.apply({ type: "revoked" });
        return;
      }
      const { expiry } = decodeEventLog({ abi: [registeredEvent], data: log.data, topics: log.topics as [Hex, ...Hex[]], strict: true }).args;
      const known = this.lifecycle.snapshot.expiry;
      if (known !== undefined && BigInt(expiry) <= known) continue;
      const block = await getBlock(this.#o.reader, { blockNumber: BigInt(log.blockNumber!) });
      this.lifecycle.apply({ type: "registered", registeredAt: block.timestamp, expiry: BigInt(expiry) });
    }
    this.#readTo = toBlock;
  }

  /** Attests and registers; records the chain's registration, or the failure and when to try again. */
  async #attempt({ rethrow }: { rethrow: boolean }): Promise<void> {
    try {
      const { transactionHash } = await this.#o.attestAndRegister();
      const registration = await this.#registrationOf(transactionHash);
      this.lifecycle.apply({ type: "registered", ...registration });
      this.#nextAttemptAt = 0;
    } catch (error) {
      const snapshot = this.lifecycle.apply({ type: "attempt-failed", error: (error as Error).message });
      this.#nextAttemptAt = Date.now() + backoffDelay(snapshot.failures, this.#o.retryBaseMs ?? 1_000, this.#o.retryMaxMs ?? 60_000);
      if (rethrow) throw error;
    }
  }

  /** The registration a transaction recorded, from its EnclaveRegistered event and its block's timestamp. */
  async #registrationOf(hash: Hex): Promise<{ registeredAt: bigint; expiry: bigint }> {
    const receipt = await waitForTransactionReceipt(this.#o.reader, { hash });
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() !== this.#o.registry.toLowerCase() || log.topics[0] !== registeredTopic) continue;
      const { enclave, expiry } = decodeEventLog({ abi: [registeredEvent], data: log.data, topics: log.topics, strict: true }).args;
      if (enclave.toLowerCase() !== this.#o.enclave.toLowerCase()) continue;
      const block = await getBlock(this.#o.reader, { blockNumber: receipt.blockNumber });
      if (receipt.blockNumber > this.#readTo) this.#readTo = receipt.blockNumber;
      return { registeredAt: block.timestamp, expiry: BigInt(expiry) };
    }
    throw new RegistrationLookupError(`transaction ${hash} holds no EnclaveRegistered event of ${this.#o.enclave} in registry ${this.#o.registry}; is the attestation service using another registry than this node?`);
  }
}
