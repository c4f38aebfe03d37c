/**
 * The enclave process. Started by client.ts with child_process.fork; talks
 * only through the call gate over the IPC channel. It measures its own code,
 * unseals (or creates) its keys, and serves init, attest, runJob and refuseJob
 * (the job seam: job-runner.ts, one module per kind in jobs/).
 * Relay frames (`{ net: ... }`) on the same channel carry its own TLS
 * connections (src/enclave/net/) and never reach the gate.
 * Nothing secret is ever written to a frame, a log or an unsealed file.
 */
import { createPublicKey } from "node:crypto";
import { bytesToHex } from "viem";
import { createAttestedCertificate } from "../attestation/atls/certificate.ts";
import type { AttestationProvider } from "../attestation/types.ts";
import { fromHex, toHex } from "../crypto/bytes.ts";
import { enclaveReportData } from "../protocol/binding.ts";
import { loadAttestationProvider, fallbackTee } from "./attestation.ts";
import { checkPayload, requestFrameSchema, type EnclaveIdentity, type GateMethod, type InitParams, type ReleaseCollabResultParams, type ResponseFrame } from "./call-gate.ts";
import { EnclaveError } from "./errors.ts";
import { createRelayChannel } from "./net/channel.ts";
import { createEnclaveNet, type EnclaveTlsIdentity } from "./net/connect.ts";
import { isRelayFrame } from "./net/frames.ts";
import { processRelayPort } from "./net/process-port.ts";
import { loadOrCreateKeys, type EnclaveKeys } from "./keys.ts";
import { measureEnclaveCode } from "./measurement.ts";
import { refuseJob, runJob } from "./job-runner.ts";
import { reportingRefusals } from "./jobs/collab/errors.ts";
import { releaseResult } from "./jobs/collab/release.ts";
import type { EnclaveContext } from "./jobs/job-module.ts";
import { sealingRootFor } from "./sealing-root.ts";

interface State {
  ctx: EnclaveContext;
  identity: EnclaveIdentity;
  provider: AttestationProvider | EnclaveError;
  dataDir: string;
}

let state: Promise<State> | undefined;

const relayChannel = createRelayChannel(processRelayPort());

/**
 * The certificate the enclave presents to attested peers: its sealed
 * long-lived TLS key (which report_data of its registration commits to),
 * certified by fresh evidence of the provider and naming its signer, so a
 * peer can tie the session to the registered enclave. Made once per process.
 */
function tlsIdentity(provider: AttestationProvider | EnclaveError, keys: EnclaveKeys): (() => Promise<EnclaveTlsIdentity>) | undefined {
  if (provider instanceof EnclaveError) return undefined;
  const keyPair = { privateKey: keys.tls.privateKey, publicKey: createPublicKey({ key: Buffer.from(keys.tls.spki), format: "der", type: "spki" }) };
  let made: Promise<EnclaveTlsIdentity> | undefined;
  return () =>
    (made ??= createAttestedCertificate({ provider, keyPair, signer: keys.account.address }).catch((e: unknown) => {
      made = undefined;
      throw e;
    }));
}

async function initialize(params: InitParams): Promise<State> {
  const measurement = await measureEnclaveCode();
  const sealingKey = await sealingRootFor(params.attestation).sealingKey(measurement);
  const { keys } = await loadOrCreateKeys(params.dataDir, sealingKey);
  sealingKey.fill(0);
  const provider = await loadAttestationProvider(params.attestation, measurement);
  const tee = provider instanceof EnclaveError ? fallbackTee(params.attestation) : { teeType: provider.teeType, simulated: provider.simulated };
  const identity: EnclaveIdentity = {
    signer: keys.account.address,
    hpkePublicKey: toHex(keys.hpke.publicKey),
    provenanceKey: toHex(keys.provenance.spki),
    tlsKey: toHex(keys.tls.spki),
    measurement,
    teeType: tee.teeType,
    simulated: tee.simulated,
  };
  const certificate = tlsIdentity(provider, keys);
  const net = createEnclaveNet({ channel: relayChannel, ...(certificate ? { certificate } : {}) });
  return { ctx: { keys, measurement, ...tee, net }, identity, provider, dataDir: params.dataDir };
}

async function handle(method: GateMethod, params: unknown): Promise<unknown> {
  const checked = checkPayload(method, "params", params);
  if (!checked.ok) throw new EnclaveError("BAD_REQUEST", `the enclave refused a malformed request: ${checked.problem}`);
  if (method === "init") {
    const p = checked.value as InitParams;
    state ??= initialize(p);
    const s = await state.catch((e: unknown) => {
      state = undefined;
      throw e;
    });
    if (s.dataDir !== p.dataDir) throw new EnclaveError("BAD_REQUEST", `the enclave is already initialized with data dir ${s.dataDir}`);
    return s.identity;
  }
  if (!state) throw new EnclaveError("NOT_INITIALIZED", `call init before ${method}`);
  const s = await state;
  if (method === "attest") {
    if (s.provider instanceof EnclaveError) throw s.provider;
    const { freshness, operator } = checked.value as { freshness?: `0x${string}`; operator: `0x${string}` };
    const { keys } = s.ctx;
    const reportData = enclaveReportData(
      { signer: keys.account.address, hpkePublicKey: keys.hpke.publicKey, provenanceKey: keys.provenance.spki, tlsKey: keys.tls.spki, operator },
      freshness ? fromHex(freshness) : undefined,
    );
    try {
      return { evidence: await s.provider.attest(reportData), reportData: bytesToHex(reportData) };
    } catch (cause) {
      throw new EnclaveError("ATTESTATION_FAILED", `the attestation provider could not produce evidence: ${String(cause)}`, { cause });
    }
  }
  if (method === "refuseJob") return refuseJob(s.ctx, checked.value as Parameters<typeof refuseJob>[1]);
  if (method === "releaseCollabResult") return reportingRefusals(() => releaseResult(checked.value as ReleaseCollabResultParams));
  return runJob(s.ctx, checked.value as Parameters<typeof runJob>[1]);
}

/** Only typed errors cross the gate with their message; anything else is reported without details that could carry data. */
function toGateError(e: unknown): { code: string; message: string } {
  if (e instanceof EnclaveError) return { code: e.code, message: e.message };
  return { code: "INTERNAL", message: `internal enclave error (${e instanceof Error ? e.name : typeof e})` };
}

function reply(frame: ResponseFrame): void {
  process.send?.(frame);
}

process.on("message", (raw: unknown) => {
  if (isRelayFrame(raw)) return;
  const frame = requestFrameSchema.safeParse(raw);
  if (!frame.success) {
    const id = typeof (raw as { id?: unknown })?.id === "number" ? (raw as { id: number }).id : 0;
    reply({ id, error: { code: "BAD_REQUEST", message: "the enclave refused a frame that is not { id, method, params }" } });
    return;
  }
  const { id, method, params } = frame.data;
  handle(method, params).then(
    (result) => {
      const checked = checkPayload(method, "result", result);
      reply(checked.ok ? { id, result: checked.value } : { id, error: { code: "INTERNAL", message: `enclave produced an invalid ${checked.problem}` } });
    },
    (e: unknown) => reply({ id, error: toGateError(e) }),
  );
});

process.on("disconnect", () => process.exit(0));
