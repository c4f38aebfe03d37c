/**
 * A clean-room collaboration as contracts/Collaborations.sol holds it: the
 * terms every party approves, the EIP-712 Approval and Withdrawal a party signs
 * (relayable), and the EIP-712 Run the compute enclave signs for each run. Must match the
 * structs, type hashes, QUERY_TAG and EIP712 domain of the contract.
 *
 * The Run is JobAnchor-shaped (./anchor.ts: an id, what was approved, the
 * inputs, the output, the provenance) but carries the run's counts and the
 * epsilon it spent in clear: the contract enforces maxRuns and the DP budget
 * from them, which a digest could not give it.
 */
import { encodeAbiParameters, hashTypedData, keccak256, type Address, type Hex } from "viem";
import { sha256 } from "../crypto/sha256.ts";
import { CloisterError } from "../util/base-error.ts";
import { DOMAIN } from "./domains.ts";

export const collaborationsDomainName = "Cloister Collaborations";
export const collaborationsDomainVersion = "1";

/** Fixed-point scale of epsilon on chain: 1_000_000n is epsilon 1.0. */
export const EPSILON_SCALE = 1_000_000n;

export interface CollaborationParty {
  /** The account that approves (signs the Approval). */
  account: Address;
  /** The operator the party's enclave must be registered for; zero address: any. */
  operator: Address;
  /** The registry's measurement of the party's enclave (onChainMeasurement); zero: none, the manifest decides. */
  measurement: Hex;
  /** Digest of a policy manifest (src/attestation/manifest/digest.ts) peers check the enclave against; zero: none. */
  manifestDigest: Hex;
  /** keccak256 of the role's name in that manifest (manifestRoleId); zero with a zero manifestDigest. */
  manifestRole: Hex;
  /** digestSet (./anchor.ts) of the party's dataset descriptors. */
  datasetsDigest: Hex;
}

export interface CollaborationTerms {
  parties: CollaborationParty[];
  /** Index in `parties` of the party whose enclave runs the query and records the runs. */
  computeParty: number;
  /** queryDigest(queryText). */
  queryDigest: Hex;
  /** The SQL text, checked on chain against queryDigest and emitted; or "" with queryCid set. */
  queryText: string;
  queryCid: string;
  policyDigest: Hex;
  maxRuns: number;
  /** Total epsilon in EPSILON_SCALE units; 0n: no differential privacy. */
  dpBudget: bigint;
  /** The recipient descriptor (e.g. "https://…", "party:retailer"). */
  recipient: string;
  /** The recipient's pin: SHA-256 of a party recipient's X25519 result key, or of the DER certificate a table's or endpoint's TLS server must present. */
  recipientPin: Hex;
  allowSimulated: boolean;
}

export interface CollaborationApproval {
  collaborationId: bigint;
  termsHash: Hex;
  queryDigest: Hex;
  policyDigest: Hex;
  /** The party's current nonce on chain: each approval and withdrawal uses one. */
  nonce: bigint;
}

/** What the compute enclave reports and signs for one run; `enclave` is its registered address. */
export interface RunReport {
  /** 1 for the first run, then one more per recorded run. */
  runId: number;
  enclave: Address;
  /** digestSet of the parties' dataset digests as the enclave read them. */
  inputDigest: Hex;
  resultDigest: Hex;
  provenanceDigest: Hex;
  rowsDelivered: bigint;
  rowsSuppressed: bigint;
  /** In EPSILON_SCALE units. */
  epsilonSpent: bigint;
}

export const approvalTypes = {
  Approval: [
    { name: "collaborationId", type: "uint256" },
    { name: "termsHash", type: "bytes32" },
    { name: "queryDigest", type: "bytes32" },
    { name: "policyDigest", type: "bytes32" },
    { name: "nonce", type: "uint64" },
  ],
} as const;

export const withdrawalTypes = {
  Withdrawal: [
    { name: "collaborationId", type: "uint256" },
    { name: "nonce", type: "uint64" },
  ],
} as const;

export const runTypes = {
  Run: [
    { name: "collaborationId", type: "uint256" },
    { name: "runId", type: "uint32" },
    { name: "termsHash", type: "bytes32" },
    { name: "inputDigest", type: "bytes32" },
    { name: "resultDigest", type: "bytes32" },
    { name: "provenanceDigest", type: "bytes32" },
    { name: "rowsDelivered", type: "uint64" },
    { name: "rowsSuppressed", type: "uint64" },
    { name: "epsilonSpent", type: "uint64" },
  ],
} as const;

/** The ABI type of Collaborations.Terms, for termsHash. */
export const termsAbiType = {
  type: "tuple",
  components: [
    {
      name: "parties",
      type: "tuple[]",
      components: [
        { name: "account", type: "address" },
        { name: "operator", type: "address" },
        { name: "measurement", type: "bytes32" },
        { name: "manifestDigest", type: "bytes32" },
        { name: "manifestRole", type: "bytes32" },
        { name: "datasetsDigest", type: "bytes32" },
      ],
    },
    { name: "computeParty", type: "uint8" },
    { name: "queryDigest", type: "bytes32" },
    { name: "queryText", type: "string" },
    { name: "queryCid", type: "string" },
    { name: "policyDigest", type: "bytes32" },
    { name: "maxRuns", type: "uint32" },
    { name: "dpBudget", type: "uint64" },
    { name: "recipient", type: "string" },
    { name: "recipientPin", type: "bytes32" },
    { name: "allowSimulated", type: "bool" },
  ],
} as const;

export class CollaborationTermsError extends CloisterError<"INVALID_EPSILON"> {}

export function collaborationsDomain(chainId: bigint, verifyingContract: Address) {
  return { name: collaborationsDomainName, version: collaborationsDomainVersion, chainId, verifyingContract } as const;
}

/** The digest the terms name for `sql`: SHA-256(DOMAIN.collabQuery || 0x00 || UTF-8 text). */
export function queryDigest(sql: string): Hex {
  const tag = new TextEncoder().encode(DOMAIN.collabQuery);
  return sha256(Buffer.concat([tag, Buffer.from([0]), Buffer.from(sql, "utf8")]));
}

/** keccak256(abi.encode(terms)), as the contract computes it: every approval and run names it. */
export function termsHash(terms: CollaborationTerms): Hex {
  return keccak256(encodeAbiParameters([termsAbiType], [terms]));
}

/** The id createCollaboration gives (`creator`, `salt`) on `chainId` at `contract`. */
export function collaborationId(chainId: bigint, contract: Address, creator: Address, salt: Hex): bigint {
  return BigInt(
    keccak256(encodeAbiParameters([{ type: "uint256" }, { type: "address" }, { type: "address" }, { type: "bytes32" }], [chainId, contract, creator, salt])),
  );
}

/** The id of a manifest role as a party's manifestRole names it. */
export function manifestRoleId(role: string): Hex {
  return keccak256(new TextEncoder().encode(role));
}

export function approvalDigest(domain: ReturnType<typeof collaborationsDomain>, approval: CollaborationApproval): Hex {
  return hashTypedData({ domain, types: approvalTypes, primaryType: "Approval", message: approval });
}

/** The digest a party signs to withdraw its approval through a relayer, at its current `nonce`. */
export function withdrawalDigest(domain: ReturnType<typeof collaborationsDomain>, collaborationId: bigint, nonce: bigint): Hex {
  return hashTypedData({ domain, types: withdrawalTypes, primaryType: "Withdrawal", message: { collaborationId, nonce } });
}

/** The digest the compute enclave signs for `report` of `collaborationId` (whose terms hash is `terms`). */
export function runDigest(domain: ReturnType<typeof collaborationsDomain>, collaborationId: bigint, terms: Hex, report: RunReport): Hex {
  const { runId, inputDigest, resultDigest, provenanceDigest, rowsDelivered, rowsSuppressed, epsilonSpent } = report;
  return hashTypedData({
    domain,
    types: runTypes,
    primaryType: "Run",
    message: { collaborationId, runId, termsHash: terms, inputDigest, resultDigest, provenanceDigest, rowsDelivered, rowsSuppressed, epsilonSpent },
  });
}

/**
 * Epsilon as the chain holds it, from a decimal ("0.5", "2", 1.25): exact to six decimals, so a policy's
 * epsilon and budget add up on chain as they do in the policy file. More decimals, or a negative or
 * non-finite value, is refused rather than rounded.
 */
export function epsilonToFixed(epsilon: string | number): bigint {
  const text = typeof epsilon === "number" ? (Number.isFinite(epsilon) ? String(epsilon) : "") : epsilon.trim();
  const match = /^(\d+)(?:\.(\d{1,6}))?$/.exec(text);
  if (!match) {
    throw new CollaborationTermsError("INVALID_EPSILON", `epsilon ${JSON.stringify(String(epsilon))} is not a non-negative decimal with at most 6 decimals; write it as e.g. "0.5"`);
  }
  const fixed = BigInt(match[1]!) * EPSILON_SCALE + BigInt((match[2] ?? "").padEnd(6, "0"));
  if (fixed >= 1n << 64n) throw new CollaborationTermsError("INVALID_EPSILON", `epsilon ${text} is too large for the chain (uint64 of millionths)`);
  return fixed;
}

/** The decimal text of a fixed-point epsilon ("1.5", "0.000001"). */
export function epsilonFromFixed(fixed: bigint): string {
  const whole = fixed / EPSILON_SCALE;
  const frac = (fixed % EPSILON_SCALE).toString().padStart(6, "0").replace(/0+$/, "");
  return frac === "" ? whole.toString() : `${whole}.${frac}`;
}

/**
 * Where Collaborations keeps its state (Solidity's storage layout; OpenZeppelin's EIP712 holds slots 0 and 1),
 * so an enclave can prove it with eth_getProof (src/enclave/chain-view/): `collaborations[id]` is a struct of six
 * words from keccak256(abi.encode(id, 2)), `parties[id][account]` one word at the nested mapping of slot 3,
 * `runResults[id][runId]` (a recorded run's result digest) at the nested mapping of slot 6.
 */
export const collaborationsStorage = {
  collaborationsSlot: 2n,
  partiesSlot: 3n,
  runResultsSlot: 6n,
  /** Word offsets within collaborations[id]. */
  words: { packed: 0n, computeOperator: 1n, computeMeasurement: 2n, termsHash: 3n, queryDigest: 4n, policyDigest: 5n },
} as const;

export interface PackedCollaboration {
  maxRuns: number;
  runs: number;
  dpBudget: bigint;
  dpSpent: bigint;
  /** Zero: no collaboration has this id. */
  partyCount: number;
  allowSimulated: boolean;
  /** Bit i set: party i's approval stands. */
  approvals: number;
}

/** The first word of collaborations[id]: what a run changes or checks first. */
export function decodePackedCollaboration(word: Hex): PackedCollaboration {
  const v = BigInt(word);
  const bits = (from: bigint, width: bigint) => (v >> from) & ((1n << width) - 1n);
  return {
    maxRuns: Number(bits(0n, 32n)),
    runs: Number(bits(32n, 32n)),
    dpBudget: bits(64n, 64n),
    dpSpent: bits(128n, 64n),
    partyCount: Number(bits(192n, 8n)),
    allowSimulated: bits(200n, 8n) !== 0n,
    approvals: Number(bits(208n, 32n)),
  };
}

/** The word of parties[id][account]: index + 1 (0: not a party) and the party's nonce. */
export function decodePartyWord(word: Hex): { index: number | null; nonce: bigint } {
  const v = BigInt(word);
  const index = Number(v & 0xffn);
  return { index: index === 0 ? null : index - 1, nonce: (v >> 8n) & ((1n << 64n) - 1n) };
}
