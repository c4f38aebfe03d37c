/**
 * What a job kind is inside the enclave: a module the runtime (../job-runner.ts)
 * drives through the same steps for every kind. authorize runs first and is
 * the only step that may look at the job's parameters before the enclave
 * touches its data (unwraps a key, decrypts, reads a database); execute does
 * the work and returns its outputs (ciphertext for their recipients) and its
 * part of the provenance predicate; the runtime then builds and signs the
 * provenance record, and the kind signs its anchor over the result.
 */
import type { Hex } from "viem";
import type { JobKind, KindPredicates } from "../../protocol/job-kinds.ts";
import type { EnclaveKeys } from "../keys.ts";
import type { EnclaveNet } from "../net/connect.ts";

export interface EnclaveContext {
  keys: EnclaveKeys;
  measurement: string;
  teeType: string;
  simulated: boolean;
  /** The enclave's own pinned TLS connections through the host's relay, for job code that talks to the network (absent where a context is built without one, as in unit tests). */
  net?: EnclaveNet;
}

export interface ResourceUse {
  wallMs: number;
  cpuMs: number;
  outputBytes: number;
}

/** What execute returns to the runtime. */
export interface JobRun<K extends JobKind> {
  /** Output blobs by name: the provenance subject, published by the host; a withheld one's bytes stay inside (the host gets its digest and CID). */
  outputs: { name: string; bytes: Uint8Array; withheld?: true }[];
  /** SHA-256 of each input, by name. */
  inputs: { name: string; digest: Hex }[];
  /** Null when the kind keeps resource use from the host and the public record. */
  resourceUse: ResourceUse | null;
  /** A failure the kind reports to the host and the public record; null when it ran. */
  error: { code: string; message: string } | null;
  kindPredicate: KindPredicates[K];
  /** Frees what the run no longer needs once its outcome is out (closing a DuckDB instance takes 10–20 ms): the runtime calls it after replying. */
  release?: () => void;
}

/** The outputs and provenance once published-to-be: what the anchor signs over. */
export interface SealedRun {
  outputs: { name: string; digest: Hex; cid: string }[];
  provenanceDigest: Hex;
  provenanceCid: string;
}

export interface JobAnchorSignature {
  type: "JobAnchor" | "TaskMarket.Completion" | "Pipelines.Run" | "Grants.Use" | "Collaborations.Run";
  signature: Hex;
}

export interface JobRefusal {
  reason: number;
  failure: { code: string; message: string };
  signature: Hex;
}

export interface JobModule<K extends JobKind, P, A> {
  readonly kind: K;
  /** The job's id, as its provenance and anchor name it. */
  jobId(params: P): bigint;
  /** Every check before data is touched; throws EnclaveError. Returns what execute needs. */
  authorize(ctx: EnclaveContext, params: P): Promise<A>;
  execute(ctx: EnclaveContext, params: P, authorized: A): Promise<JobRun<K>>;
  anchor(ctx: EnclaveContext, params: P, run: SealedRun): Promise<JobAnchorSignature>;
  /** A signed refusal when the job's own inputs make it unrunnable; kinds without a refusal on chain leave it out. */
  refuse?(ctx: EnclaveContext, params: P, attempt: number): Promise<JobRefusal>;
}
