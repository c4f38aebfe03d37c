/**
 * Checks one provenance record on its own, as `cloister verify` does: the
 * DSSE signature by the P-256 provenance key the record names; that key,
 * with the enclave's other keys, named by the evidence document the record
 * names and committed to by its report_data (with the operator: the one
 * given, else the one that completed the task on chain), under the
 * verifier's policy, with the measurement the record names; the digest of
 * the output when it is at hand; and, when a chain is at hand, the on-chain
 * anchor: for a task, the TaskCompleted event names the same enclave,
 * provenance digest and output digest.
 */
import { getAddress, hexToBytes, parseEventLogs, type Address, type Client, type Hex } from "viem";
import { sha256 } from "../crypto/sha256.ts";
import { getLogs } from "viem/actions";
import { decodeEvidenceDocument } from "../attestation/evidence-codec.ts";
import type { Policy } from "../attestation/policy.ts";
import type { Claims } from "../attestation/types.ts";
import { verifyEvidence } from "../attestation/verify.ts";
import { taskMarketAbi } from "../chain/abi/TaskMarket.ts";
import { listGrantUses } from "../chain/actions/read-grant-logs.ts";
import type { KindPredicates } from "../protocol/job-kinds.ts";
import { enclaveKeyCommitmentHex } from "../protocol/binding.ts";
import { provenanceDigest, unverifiedStatement, verifyEnvelope, type ProvenanceStatement } from "../protocol/provenance.ts";

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
  chain?: { reader: Client; market: Address; fromBlock: bigint; grants?: Address };
  /** The operator the enclave's evidence must be bound to, when no chain is given (or to insist on one). */
  operator?: Address;
}

export async function verifyProvenanceRecord(sources: ProvenanceSources): Promise<ProvenanceVerdict> {
  const checks: ProvenanceCheck[] = [];
  const verdict = (statement?: ProvenanceStatement, claims?: Claims): ProvenanceVerdict => ({ ok: checks.every((c) => c.ok), statement, claims, checks });

  let statement: ProvenanceStatement;
  try {
    // The key the record names; the attestation check below ties it to the enclave's quote.
    statement = unverifiedStatement(sources.envelope);
    verifyEnvelope(sources.envelope, hexToBytes(statement.predicate.enclave.provenanceKey));
    checks.push({ name: "signature", ok: true, detail: `DSSE envelope signed (ECDSA P-256) by the provenance key of enclave ${statement.predicate.enclave.signer}` });
  } catch (error) {
    checks.push({ name: "signature", ok: false, detail: (error as Error).message });
    return verdict();
  }
  const enclave = statement.predicate.enclave;
  const job = statement.predicate.job;
  const completion = sources.chain && job.kind === "task" ? await completionOf(sources.chain, BigInt(job.id)) : undefined;
  // A granted manipulation's enclave proved its own operator on chain and names it in the signed record.
  const operator = sources.operator ?? completion?.operator ?? (job.kind === "operate" ? operatePart(statement)?.operator : undefined);

  let claims: Claims | undefined;
  if (!sources.evidence) {
    checks.push({ name: "attestation", ok: false, detail: `evidence ${enclave.evidenceCid} not available: pass it to check the enclave's attestation` });
  } else {
    const bytes = typeof sources.evidence === "function" ? await sources.evidence(enclave.evidenceCid) : sources.evidence;
    const { evidence, enclaveKeys } = decodeEvidenceDocument(bytes);
    const result = await verifyEvidence(evidence, { policy: sources.policy });
    claims = result.claims;
    // The record's keys must be the ones its evidence names, which report_data must commit to.
    const keysMatch =
      enclaveKeys !== undefined &&
      (["signer", "hpkePublicKey", "provenanceKey", "tlsKey"] as const).every((k) => enclaveKeys[k].toLowerCase() === enclave[k].toLowerCase());
    const commitment =
      operator &&
      enclaveKeyCommitmentHex({
        signer: getAddress(enclave.signer),
        hpkePublicKey: hexToBytes(enclave.hpkePublicKey),
        provenanceKey: hexToBytes(enclave.provenanceKey),
        tlsKey: hexToBytes(enclave.tlsKey),
        operator,
      });
    const problems = [
      ...(result.ok ? [] : [`not authentic: ${result.error}`]),
      ...(keysMatch ? [] : ["the evidence document does not name the keys the record names"]),
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

  if (sources.chain) {
    checks.push(
      job.kind === "task"
        ? checkAnchor(sources.chain, completion, statement, provenanceDigest(sources.envelope).slice(2), subject)
        : job.kind === "operate"
          ? await checkGrantUse(sources.chain, statement, provenanceDigest(sources.envelope))
          : { name: "anchor", ok: false, detail: `no anchor check for jobs of kind ${(job as { kind: string }).kind} yet` },
    );
  }
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
  const taskId = BigInt(statement.predicate.job.id);
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

function operatePart(statement: ProvenanceStatement): KindPredicates["operate"] | undefined {
  return (statement.predicate as { operate?: KindPredicates["operate"] }).operate;
}

/** A granted manipulation is anchored by the GrantUsed event of its run on the network's Grants contract. */
async function checkGrantUse(chain: NonNullable<ProvenanceSources["chain"]>, statement: ProvenanceStatement, envelopeDigest: Hex): Promise<ProvenanceCheck> {
  const part = operatePart(statement);
  if (!part) return { name: "anchor", ok: false, detail: "the record has no operate predicate" };
  if (!chain.grants) return { name: "anchor", ok: false, detail: "this network's deployment names no Grants contract" };
  if (getAddress(part.grants) !== getAddress(chain.grants)) return { name: "anchor", ok: false, detail: `the record names Grants ${part.grants}, not this network's ${chain.grants}` };
  const uses = await listGrantUses(chain.reader, chain.grants, BigInt(part.grantId), chain.fromBlock);
  const use = uses.find((u) => u.runId.toLowerCase() === part.runId.toLowerCase());
  if (!use) return { name: "anchor", ok: false, detail: `no use of grant ${part.grantId} with run ${part.runId} is recorded on chain` };
  const problems = [
    ...(use.provenanceDigest.toLowerCase() !== envelopeDigest.toLowerCase() ? ["the recorded provenance digest differs"] : []),
    ...(getAddress(use.enclave) !== getAddress(statement.predicate.enclave.signer) ? [`the use was recorded by enclave ${use.enclave}`] : []),
    ...(use.use !== part.use ? [`it is recorded as use ${use.use}, the record says ${part.use}`] : []),
  ];
  return { name: "anchor", ok: problems.length === 0, detail: problems.length ? problems.join("; ") : `recorded as use ${use.use} of grant ${part.grantId} in block ${use.blockNumber}` };
}
