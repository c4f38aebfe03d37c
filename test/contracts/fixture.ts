/** A deployed Cloister on a fresh in-process chain, with one client per role. */
import assert from "node:assert/strict";
import { keccak256, stringToBytes, toHex, zeroAddress, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { ContractRevertError } from "../../src/chain/contract-error.ts";
import { createReaderClient, createWriterClient, type ReaderClient, type WriterClient } from "../../src/chain/clients.ts";
import { deployCloister, type CloisterDeployment } from "../../src/chain/deploy.ts";
import { startLocalChain, type LocalChain, type LocalChainOptions } from "../../src/chain/local-chain.ts";
import { postOffer, type OfferTerms } from "../../src/chain/actions/offers.ts";
import { registerEnclave, type EnclaveRegistration } from "../../src/chain/actions/register-enclave.ts";
import { completionDomain, completionTypes, type Completion } from "../../src/protocol/completion.ts";
import { refusalTypes, type Refusal } from "../../src/protocol/refusal.ts";
import type { CompleteTaskParams } from "../../src/chain/actions/complete-task.ts";
import type { Assignment, TaskSpec } from "../../src/protocol/task.ts";

export interface Fixture {
  chain: LocalChain;
  deployment: CloisterDeployment;
  reader: ReaderClient;
  deployer: WriterClient;
  attester: WriterClient;
  requester: WriterClient;
  operators: WriterClient[];
  writer(account: PrivateKeyAccount): WriterClient;
  close(): Promise<void>;
}

export async function startFixture(options: LocalChainOptions = {}): Promise<Fixture> {
  const chain = await startLocalChain(options);
  const endpoint = { provider: chain.provider };
  const writer = (account: PrivateKeyAccount) => createWriterClient({ endpoint, chain: chain.chain, account });
  const deployer = writer(chain.accounts.deployer);
  const deployment = await deployCloister(deployer, { attester: chain.accounts.attester.address });
  return {
    chain,
    deployment,
    reader: createReaderClient({ endpoint, chain: chain.chain }),
    deployer,
    attester: writer(chain.accounts.attester),
    requester: writer(chain.accounts.requester),
    operators: chain.accounts.operators.map(writer),
    writer,
    close: () => chain.close(),
  };
}

export interface TestEnclave {
  account: PrivateKeyAccount;
  address: Address;
}

export function newEnclave(): TestEnclave {
  const account = privateKeyToAccount(generatePrivateKey());
  return { account, address: account.address };
}

export async function latestTimestamp(f: Fixture): Promise<bigint> {
  return (await f.reader.getBlock()).timestamp;
}

/** Registers `enclave` for `operator`, valid for `ttl` seconds from the latest block. */
export async function register(
  f: Fixture,
  enclave: TestEnclave,
  operator: Address,
  overrides: Partial<EnclaveRegistration> & { ttl?: bigint } = {},
): Promise<EnclaveRegistration> {
  const { ttl = 3600n, ...rest } = overrides;
  const registration: EnclaveRegistration = {
    enclave: enclave.address,
    operator,
    hpkePublicKey: keccak256(stringToBytes(`hpke ${enclave.address}`)),
    teeType: "SGX",
    simulated: true,
    measurement: keccak256(stringToBytes("measurement")),
    expiry: (await latestTimestamp(f)) + ttl,
    evidenceCid: "bafkreievidence",
    ...rest,
  };
  await registerEnclave(f.attester, f.deployment.registry, registration);
  return registration;
}

export function randomDigest(): Hex {
  return toHex(crypto.getRandomValues(new Uint8Array(32)));
}

/** A spec from the fixture's requester: native payment, category XS x 2, one attempt, any TEE, small requirements. */
export function makeSpec(f: Fixture, candidates: Address[], overrides: Partial<TaskSpec> = {}): TaskSpec {
  return {
    requester: f.requester.account.address,
    token: zeroAddress,
    maxPrice: 10n ** 17n,
    programDigest: randomDigest(),
    inputDigest: randomDigest(),
    envelopeDigest: randomDigest(),
    envelopeCid: "bafkreienvelope",
    candidates,
    cpuMillis: 1000,
    memoryMb: 256,
    duration: 60,
    teeTypes: 7,
    category: 0,
    deadlineMultiple: 2,
    maxAttempts: 1,
    ...overrides,
  };
}

/** A node's offer: generous resources at `price`. */
export const defaultOffer = { price: 5n * 10n ** 16n, cpuMillis: 4000, memoryMb: 4096, maxDuration: 3600 };

/** Registers `enclave` for `operator` and posts its offer in native currency (and in `token` when given). */
export async function registerWithOffer(
  f: Fixture,
  enclave: TestEnclave,
  operator: WriterClient,
  offer: Partial<OfferTerms> & { token?: Address } = {},
): Promise<void> {
  await register(f, enclave, operator.account.address);
  const { token = zeroAddress, ...terms } = offer;
  await postOffer(operator, f.deployment.market, { enclave: enclave.address, token, ...defaultOffer, ...terms });
}

export function signCompletion(f: Fixture, signer: PrivateKeyAccount, completion: Completion): Promise<Hex> {
  return signer.signTypedData({
    domain: completionDomain(BigInt(f.chain.chainId), f.deployment.market),
    types: completionTypes,
    primaryType: "Completion",
    message: completion,
  });
}

export function signRefusal(f: Fixture, signer: PrivateKeyAccount, refusal: Refusal): Promise<Hex> {
  return signer.signTypedData({
    domain: completionDomain(BigInt(f.chain.chainId), f.deployment.market),
    types: refusalTypes,
    primaryType: "Refusal",
    message: refusal,
  });
}

/** Moves the chain clock forward and mines a block at the new time. */
export async function advanceTime(f: Fixture, seconds: bigint): Promise<void> {
  await f.chain.provider.request({ method: "evm_increaseTime", params: [Number(seconds)] });
  await f.chain.provider.request({ method: "evm_mine", params: [] });
}

/** The ether a transaction cost its sender. */
export function feeOf(receipt: { gasUsed: bigint; effectiveGasPrice: bigint }): bigint {
  return receipt.gasUsed * receipt.effectiveGasPrice;
}

/** Awaits a contract call that must revert with the named custom error; returns the decoded error. */
export async function rejectsWith(promise: Promise<unknown>, errorName: string): Promise<ContractRevertError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ContractRevertError, `expected ContractRevertError, got ${String(err)}`);
    assert.equal(err.errorName, errorName, err.message);
    return err;
  }
  assert.fail(`expected a revert with ${errorName}`);
}

/** A completion of `taskId` with fresh output and provenance digests, signed by `signer`'s key. */
export async function signedCompletion(f: Fixture, taskId: bigint, spec: TaskSpec, assignment: Assignment, signer: TestEnclave): Promise<CompleteTaskParams> {
  const outputDigest = randomDigest();
  const provenanceDigest = randomDigest();
  const [outputCid, provenanceCid] = ["bafkreioutput", "bafkreiprovenance"];
  const signature = await signCompletion(f, signer.account, { taskId, programDigest: spec.programDigest, inputDigest: spec.inputDigest, outputDigest, provenanceDigest, outputCid, provenanceCid });
  return { taskId, spec, assignment, outputDigest, provenanceDigest, outputCid, provenanceCid, signature };
}
