/**
 * The enclave's job runtime: the same steps for every kind of work. The gate
 * has validated the kind's params; the kind authorizes the job before any of
 * its data is touched, executes it, and the runtime turns the run into the
 * one outcome shape: output digests and CIDs, a provenance record (in-toto
 * Statement v1 in DSSE, signed with the enclave's P-256 provenance key, with
 * the common predicate part filled here), resource use and error as the kind
 * discloses them, and the kind's anchor signature.
 */
import { toHex } from "../crypto/bytes.ts";
import { sha256 } from "../crypto/sha256.ts";
import type { JobKind } from "../protocol/job-kinds.ts";
import { buildStatement, provenanceDigest, signEnvelope, type EnclaveRecord } from "../protocol/provenance.ts";
import { cidOfBytes } from "../storage/unixfs-profile.ts";
import type { JobOutcome, RefuseJobParams, RefuseJobResult, RunJobParams } from "./call-gate.ts";
import { EnclaveError } from "./errors.ts";
import type { EnclaveContext, JobModule, JobRun } from "./jobs/job-module.ts";
import { jobModules } from "./jobs/registry.ts";

export async function runJob(ctx: EnclaveContext, request: RunJobParams): Promise<JobOutcome> {
  const job = jobModules[request.kind] as JobModule<JobKind, unknown, unknown>;
  const startedOn = new Date();
  const authorized = await job.authorize(ctx, request.params);
  const run = await job.execute(ctx, request.params, authorized);
  try {
    return await outcomeOf(ctx, request, job, run, startedOn);
  } finally {
    // After the gate's reply, which is sent in the same turn as this promise settles.
    if (run.release) setImmediate(run.release);
  }
}

async function outcomeOf(ctx: EnclaveContext, request: RunJobParams, job: JobModule<JobKind, unknown, unknown>, run: JobRun<JobKind>, startedOn: Date): Promise<JobOutcome> {
  const finishedOn = new Date();
  const jobId = job.jobId(request.params);

  const outputs = run.outputs.map((o) => ({ ...o, digest: sha256(o.bytes) }));
  const statement = buildStatement({
    kind: job.kind,
    jobId,
    outputs,
    inputs: run.inputs,
    enclave: enclaveRecord(ctx, request.evidenceCid),
    policyDigest: null,
    resourceUse: run.resourceUse,
    startedOn,
    finishedOn,
    kindPredicate: run.kindPredicate,
  });
  const provenance = signEnvelope(statement, ctx.keys.provenance);
  const provDigest = provenanceDigest(provenance);
  // The CIDs the host's put will return (the fixed profile): the anchor signs them where the kind's contract wants them.
  const [provenanceCid, ...outputCids] = (await Promise.all([provenance, ...outputs.map((o) => o.bytes)].map((b) => cidOfBytes(b)))).map(String) as [string, ...string[]];
  const published = outputs.map((o, i) => ({ name: o.name, bytes: o.bytes, digest: o.digest, cid: outputCids[i]! }));
  const anchor = await job.anchor(ctx, request.params, { outputs: published, provenanceDigest: provDigest, provenanceCid });
  return {
    kind: job.kind,
    jobId,
    outputs: published.map((o, i) => (outputs[i]!.withheld ? { ...o, bytes: new Uint8Array(0), withheld: true as const } : o)),
    provenance: { bytes: provenance, digest: provDigest, cid: provenanceCid },
    resourceUse: run.resourceUse,
    error: run.error,
    anchor,
  };
}

export async function refuseJob(ctx: EnclaveContext, request: RefuseJobParams): Promise<RefuseJobResult> {
  const job = jobModules[request.kind] as JobModule<JobKind, unknown, unknown>;
  if (!job.refuse) throw new EnclaveError("BAD_REQUEST", `jobs of kind ${request.kind} have no refusal: their failures are reported in the outcome's error`);
  return job.refuse(ctx, request.params, request.attempt);
}

/** The enclave as a provenance record names it: every public key its report_data commits to, and its evidence. */
export function enclaveRecord(ctx: EnclaveContext, evidenceCid: string): EnclaveRecord {
  return {
    signer: ctx.keys.account.address,
    hpkePublicKey: toHex(ctx.keys.hpke.publicKey),
    provenanceKey: toHex(ctx.keys.provenance.spki),
    tlsKey: toHex(ctx.keys.tls.spki),
    measurement: ctx.measurement,
    teeType: ctx.teeType,
    simulated: ctx.simulated,
    evidenceCid,
  };
}
