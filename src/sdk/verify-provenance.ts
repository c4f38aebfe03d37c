/**
 * Checks one provenance record on its own, as `cloister verify` does: the
 * DSSE signature by the enclave it names, that enclave's attestation under the
 * verifier's policy (its report_data must commit to the signing and HPKE keys
 * the record names and to the operator: the one given, else the one that
 * completed the task on chain; its measurement must be the one the record names), the
 * digest of the output when it is at hand, and, when a chain is at hand, the
 * on-chain anchor: the TaskCompleted event of the task names the same enclave,
 * provenance digest and output digest.
 */
import { bytesToHex, getAddress, hexToBytes, parseEventLogs, type Address, type Client } from "viem";
import { sha256 } from "../crypto/sha256.ts";
import { getLogs } from "viem/actions";
import { decodeEvidence } from "../attestation/evidence-codec.ts";
import type { Policy } from "../attestation/policy.ts";
import type { Claims } from "../attestation/types.ts";
import { verifyEvidence } from "../attestation/verify.ts";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import { enclaveReportData } from "../protocol/binding.ts";
import { parseStatement, provenanceDigest, verifyEnvelope, type ProvenanceStatement } from "../protocol/provenance.ts";

export interface ProvenanceCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ProvenanceVerdict {
  ok: boolean;
  statement?: ProvenanceStatement;
  claims?: Claims;
  checks: ProvenanceCheck[];
}

export interface ProvenanceSources {
  envelope: Uint8Array;
  policy: Policy;
  /** The evidence document the record names, or a way to fetch it by CID; without it the attestation check fails. */
  evidence?: Uint8Array | ((cid: string) => Promise<Uint8Array>);
  /** The result blob the record's subject names; its digest is checked when given. */
  output?: Uint8Array;
  /** Checks the on-chain anchor when given; its completion names the operator the evidence must be bound to. */
  chain?: { reader: Client; market: Address; fromBlock: bigint };
  /** The operator the enclave's evidence must be bound to, when no chain is given (or to insist on one). */
  operator?: Address;
}

export async function verifyProvenanceRecord(sources: ProvenanceSources): Promise<ProvenanceVerdict> {
  const checks: ProvenanceCheck[] = [];
  const verdict = (statement?: ProvenanceStatement, claims?: Claims): ProvenanceVerdict => ({ ok: checks.every((c) => c.ok), statement, claims, checks });

  let statement: ProvenanceStatement;
  try {
    statement = parseStatement(unverifiedPayload(sources.envelope));
    await verifyEnvelope(sources.envelope, statement.predicate.enclave.signer as Address);
    checks.push({ name: "signature", ok: true, detail: `DSSE envelope signed by enclave ${statement.predicate.enclave.signer}` });
  } catch (error) {
    checks.push({ name: "signature", ok: false, detail: (error as Error).message });
    return verdict();
  }
  const enclave = statement.predicate.enclave;
  const completion = sources.chain ? await completionOf(sources.chain, BigInt(statement.predicate.task.id)) : undefined;
  const operator = sources.operator ?? completion?.operator;

  let claims: Claims | undefined;
  if (!sources.evidence) {
    checks.push({ name: "attestation", ok: false, detail: `evidence ${enclave.evidenceCid} not available: pass it to check the enclave's attestation` });
  } else {
    const evidence = typeof sources.evidence === "function" ? await sources.evidence(enclave.evidenceCid) : sources.evidence;
    const result = await verifyEvidence(decodeEvidence(evidence), { policy: sources.policy });
    claims = result.claims;
    const commitment = operator && bytesToHex(enclaveReportData(getAddress(enclave.signer), hexToBytes(enclave.hpkePublicKey as `0x${string}`), operator).subarray(0, 32)).slice(2);
    const problems = [
      ...(result.ok ? [] : [`not authentic: ${result.error}`]),
      ...result.reasons,
      ...(!commitment ? ["the operator it must be bound to is unknown: give the operator (--operator) or check against the chain"] : []),
      ...(claims && commitment && claims.reportData.slice(0, 64) !== commitment ? [`its report_data does not commit to the keys the record names and operator ${operator}`] : []),
      ...(claims && claims.measurement !== enclave.measurement ? [`its measurement ${claims.measurement} is not the record's ${enclave.measurement}`] : []),
    ];
    checks.push({
      name: "attestation",
      ok: problems.length === 0,
      detail: problems.length ? `evidence ${enclave.evidenceCid}: ${problems.join("; ")}` : `evidence ${enclave.evidenceCid} verified under the policy${claims?.simulated ? " (SIMULATED TEE)" : ""}, commits to the enclave's keys and operator ${operator}`,
    });
  }

  const subject = statement.subject[0]!.digest.sha256;
  if (sources.output) {
    const actual = sha256(sources.output).slice(2);
    checks.push({ name: "output", ok: actual === subject, detail: actual === subject ? "output blob matches the record's subject digest" : `output blob digest ${actual} is not the record's ${subject}` });
  }

  if (sources.chain) checks.push(checkAnchor(sources.chain, completion, statement, provenanceDigest(sources.envelope).slice(2), subject));
  return verdict(statement, claims);
}

async function completionOf(chain: NonNullable<ProvenanceSources["chain"]>, taskId: bigint) {
  const logs = await getLogs(chain.reader, { address: chain.market, fromBlock: chain.fromBlock, toBlock: "latest" });
  const completed = parseEventLogs({ abi: taskMarketAbi, logs, eventName: "TaskCompleted" }).find((l) => l.args.taskId === taskId);
  return completed && { ...completed.args, blockNumber: completed.blockNumber };
}

function checkAnchor(
  chain: NonNullable<ProvenanceSources["chain"]>,
  completed: Awaited<ReturnType<typeof completionOf>>,
  statement: ProvenanceStatement,
  envelopeDigest: string,
  subject: string,
): ProvenanceCheck {
  const taskId = BigInt(statement.predicate.task.id);
  if (!completed) return { name: "anchor", ok: false, detail: `no TaskCompleted event for task ${taskId} on market ${chain.market}` };
  const a = completed;
  const problems = [
    ...(a.provenanceDigest.slice(2) !== envelopeDigest ? ["the anchored provenance digest differs"] : []),
    ...(a.outputDigest.slice(2) !== subject ? ["the anchored output digest differs"] : []),
    ...(getAddress(a.enclave) !== getAddress(statement.predicate.enclave.signer) ? [`the task was completed by ${a.enclave}`] : []),
  ];
  return {
    name: "anchor",
    ok: problems.length === 0,
    detail: problems.length ? problems.join("; ") : `anchored by the completion of task ${taskId} in block ${completed.blockNumber}`,
  };
}

/** The payload before its signature is checked: only to learn which signer to check it against. */
function unverifiedPayload(envelope: Uint8Array): Uint8Array {
  let parsed: { payload?: unknown };
  try {
    parsed = JSON.parse(new TextDecoder().decode(envelope)) as { payload?: unknown };
  } catch {
    throw new Error("provenance file is not JSON: expected a DSSE envelope");
  }
  if (typeof parsed.payload !== "string") throw new Error("provenance file has no DSSE payload");
  return new Uint8Array(Buffer.from(parsed.payload, "base64"));
}
