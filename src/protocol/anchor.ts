/**
 * The one EIP-712 anchor of a job: what an enclave signs with its secp256k1
 * key (its registered identity) so that a contract can record a job's result
 * on chain. It names the job kind, the job id, the digest of what the parties
 * approved (a task's spec, a collaboration's query and policy, a grant), and
 * the digests of the inputs, the outputs and the provenance envelope.
 *
 * Several inputs or outputs enter as one digest (digestSet): SHA-256 over a
 * domain tag and the ABI encoding of their names and SHA-256 digests, sorted
 * by name, so the anchor has a fixed shape whatever the kind.
 *
 * Tasks keep TaskMarket's own Completion (src/protocol/completion.ts): it is
 * what the deployed market checks, it also signs the result and provenance
 * CIDs the market emits, and replacing it would cost a contract change and
 * gas for nothing a task needs (docs/protocol.md, "Anchors"). New job kinds'
 * contracts check this anchor.
 */
import { encodeAbiParameters, hashTypedData, type Address, type Hex } from "viem";
import { sha256 } from "../crypto/sha256.ts";
import { DOMAIN } from "./domains.ts";
import type { JobKind } from "./job-kinds.ts";

export const anchorDomainVersion = "1";

export const anchorTypes = {
  JobAnchor: [
    { name: "kind", type: "string" },
    { name: "jobId", type: "uint256" },
    { name: "approvedDigest", type: "bytes32" },
    { name: "inputDigest", type: "bytes32" },
    { name: "outputDigest", type: "bytes32" },
    { name: "provenanceDigest", type: "bytes32" },
  ],
} as const;

export interface JobAnchor {
  kind: JobKind;
  jobId: bigint;
  /** Digest of what the parties approved for this job (for a task, its spec hash). */
  approvedDigest: Hex;
  /** digestSet of the inputs. */
  inputDigest: Hex;
  /** digestSet of the outputs. */
  outputDigest: Hex;
  /** SHA-256 of the DSSE provenance envelope. */
  provenanceDigest: Hex;
}

/** The domain of the contract that checks anchors of its jobs (`name` is the contract's EIP-712 name). */
export function anchorDomain(name: string, chainId: bigint, verifyingContract: Address) {
  return { name, version: anchorDomainVersion, chainId, verifyingContract } as const;
}

/** The EIP-712 digest the enclave signs for `anchor`. */
export function anchorDigest(domain: ReturnType<typeof anchorDomain>, anchor: JobAnchor): Hex {
  return hashTypedData({ domain, types: anchorTypes, primaryType: "JobAnchor", message: anchor });
}

/** One digest for a set of named SHA-256 digests: order-independent, names bound. Names must be unique. */
export function digestSet(entries: readonly { name: string; digest: Hex }[]): Hex {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) if (sorted[i]!.name === sorted[i - 1]!.name) throw new RangeError(`digestSet: the name "${sorted[i]!.name}" appears twice`);
  const body = encodeAbiParameters(
    [{ type: "string[]" }, { type: "bytes32[]" }],
    [sorted.map((e) => e.name), sorted.map((e) => e.digest)],
  );
  const tag = new TextEncoder().encode(DOMAIN.digestSet);
  const bytes = Buffer.concat([tag, Buffer.from([0]), Buffer.from(body.slice(2), "hex")]);
  return sha256(bytes);
}
