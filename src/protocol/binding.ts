/**
 * Canonical byte encodings of the values HPKE and AEAD bind to. Fixed-width
 * fields after a domain tag: no string concatenation, no ambiguity.
 */
import { encodeAbiParameters, hexToBytes, sha256, type Address, type Hex } from "viem";
import { DOMAIN } from "./domains.ts";
import type { TaskBinding } from "./task.ts";

const utf8 = new TextEncoder();

/** `tag`, a zero byte, then `body`: the one framing every domain-separated value uses. */
export function tagged(tag: string, body: Hex | Uint8Array): Uint8Array {
  const t = utf8.encode(tag);
  const b = typeof body === "string" ? hexToBytes(body) : body;
  const out = new Uint8Array(t.length + 1 + b.length);
  out.set(t, 0);
  out[t.length] = 0;
  out.set(b, t.length + 1);
  return out;
}

function encodeBinding(b: TaskBinding): Hex {
  return encodeAbiParameters(
    [{ type: "uint256" }, { type: "address" }, { type: "uint256" }],
    [b.chainId, b.market, b.taskId],
  );
}

/** What a requester lets its data key be used for, besides the task itself. */
export interface TaskKeyTerms {
  /** SHA-256 of the one program that may run on the input. */
  programDigest: Hex;
  /** The requester's X25519 result key: the only key the output may be encrypted to. */
  resultKey: Uint8Array;
}

/**
 * HPKE info for a task's data key: binds chain id, market contract, task id, the program digest and the
 * requester's result key. The enclave learns the spec and the envelope from its host, so without the last
 * two a host could hand it the real wrapped key beside its own program or its own result key, and have
 * the requester's input run by another program or its output encrypted to the host: with them, such a
 * key does not open.
 */
export function taskKeyInfo(b: TaskBinding, terms: TaskKeyTerms): Uint8Array {
  if (terms.resultKey.length !== 32) throw new RangeError("the result key must be 32 bytes (X25519)");
  const body = encodeAbiParameters(
    [{ type: "uint256" }, { type: "address" }, { type: "uint256" }, { type: "bytes32" }, { type: "bytes32" }],
    [b.chainId, b.market, b.taskId, terms.programDigest, toHex32(terms.resultKey)],
  );
  return tagged(DOMAIN.taskKey, body);
}

/** AAD for the task's input stream. */
export function taskInputAad(b: TaskBinding): Uint8Array {
  return tagged(DOMAIN.taskInput, encodeBinding(b));
}

/** HPKE info for the result encrypted to the requester. */
export function taskResultInfo(b: TaskBinding): Uint8Array {
  return tagged(DOMAIN.taskResult, encodeBinding(b));
}

/** The public keys an enclave's report_data commits to, and the operator its evidence is for. */
export interface EnclaveKeyCommitment {
  /** secp256k1 signing address: the on-chain identity. */
  signer: Address;
  /** Raw X25519 HPKE public key (32 bytes). */
  hpkePublicKey: Uint8Array;
  /** SPKI DER of the P-256 provenance (DSSE) key. */
  provenanceKey: Uint8Array;
  /** SPKI DER of the P-256 attested-TLS key. */
  tlsKey: Uint8Array;
  /** The host account the evidence is for. */
  operator: Address;
}

/**
 * The 64-byte report_data an enclave puts in its evidence: the first 32 bytes
 * are SHA-256(tag || abi(signer, hpkePublicKey, SHA-256(provenance SPKI),
 * SHA-256(TLS SPKI), operator)), committing to all its public keys and to the
 * operator (host account) the evidence is for, so it cannot be registered
 * under another operator nor paired with keys the host picked; the last 32
 * carry a freshness value (zero when the verifier asked for none).
 */
export function enclaveReportData(k: EnclaveKeyCommitment, freshness?: Uint8Array): Uint8Array {
  if (k.hpkePublicKey.length !== 32) throw new RangeError("HPKE public key must be 32 bytes (X25519)");
  if (freshness && freshness.length !== 32) throw new RangeError("freshness value must be 32 bytes");
  const keys = encodeAbiParameters(
    [{ type: "address" }, { type: "bytes32" }, { type: "bytes32" }, { type: "bytes32" }, { type: "address" }],
    [k.signer, toHex32(k.hpkePublicKey), sha256(k.provenanceKey), sha256(k.tlsKey), k.operator],
  );
  const out = new Uint8Array(64);
  out.set(hexToBytes(sha256(tagged(DOMAIN.enclaveKeys, keys))), 0);
  if (freshness) out.set(freshness, 32);
  return out;
}

/** The first half of enclaveReportData as lowercase hex without 0x, as Claims.reportData starts. */
export function enclaveKeyCommitmentHex(k: EnclaveKeyCommitment): string {
  return Buffer.from(enclaveReportData(k).subarray(0, 32)).toString("hex");
}

function toHex32(bytes: Uint8Array): Hex {
  return `0x${Buffer.from(bytes).toString("hex")}` as Hex;
}
