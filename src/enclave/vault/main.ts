/**
 * The vault enclave process (issue 15): its own entrypoint, hence its own
 * measurement (src/enclave/measurement.ts, VAULT_ENCLAVE_ENTRYPOINTS), so that
 * a change to the task runtime or another job kind does not change the
 * identity, and the sealing key, of the enclaves that hold shares. Started by
 * src/enclave/vault/client.ts; talks only through its gate (gate.ts).
 *
 * Nothing secret is ever written to a frame, a log or an unsealed file: shares
 * leave only HPKE-sealed to the owner's ephemeral key or to a peer's
 * registered key, and rest sealed under the vault image's sealing key.
 */
import { bytesToHex } from "viem";
import type { AttestationProvider } from "../../attestation/types.ts";
import { fromHex, toHex } from "../../crypto/bytes.ts";
import { enclaveReportData } from "../../protocol/binding.ts";
import { isVaultShareError } from "../../protocol/vault-errors.ts";
import { CloisterError } from "../../util/base-error.ts";
import { loadAttestationProvider, fallbackTee } from "../attestation.ts";
import type { EnclaveIdentity } from "../call-gate.ts";
import { EnclaveError } from "../errors.ts";
import { loadOrCreateKeys, type EnclaveKeys } from "../keys.ts";
import { measureEnclaveCode, VAULT_ENCLAVE_ENTRYPOINTS } from "../measurement.ts";
import { sealingRootFor } from "../sealing-root.ts";
import { VaultChain } from "./chain.ts";
import { VaultEnclaveError } from "./errors.ts";
import { vaultGateParams, vaultRequestFrameSchema, type VaultGateMethod, type VaultGateParams } from "./gate.ts";
import { SealedVaultStore } from "./sealed-store.ts";
import { VaultService } from "./service.ts";
import { createPublicKey } from "node:crypto";
import { createAttestedCertificate, type EvidenceVerifier } from "../../attestation/atls/certificate.ts";
import { productionPolicy } from "../../attestation/policy.ts";
import { loadOrCreateSimPki, simRootDer } from "../../attestation/sim/pki.ts";
import { verifyEvidence } from "../../attestation/verify.ts";
import { createRelayChannel } from "../net/channel.ts";
import { createEnclaveNet, type EnclaveNet } from "../net/connect.ts";
import { isRelayFrame } from "../net/frames.ts";
import type { EnclaveListener } from "../net/listen.ts";
import { processRelayPort } from "../net/process-port.ts";
import { bootstrapFromPeer, PeerSessions, servePeers } from "./peers.ts";

const relayChannel = createRelayChannel(processRelayPort());

interface Ready {
  service: VaultService;
  /** Mutual attested TLS with peers of this same image (undefined without an attestation provider). */
  peers?: { net: EnclaveNet; verify: EvidenceVerifier; sessions: PeerSessions };
  listener?: EnclaveListener;
  identity: EnclaveIdentity;
  keys: EnclaveKeys;
  provider: AttestationProvider | EnclaveError;
  dataDir: string;
}

let ready: Promise<Ready> | undefined;

async function initialize(p: VaultGateParams<"init">): Promise<Ready> {
  const measurement = await measureEnclaveCode(undefined, VAULT_ENCLAVE_ENTRYPOINTS);
  const sealingKey = await sealingRootFor(p.attestation).sealingKey(measurement);
  const { keys } = await loadOrCreateKeys(p.dataDir, sealingKey);
  const opened = await SealedVaultStore.open(p.dataDir, sealingKey);
  sealingKey.fill(0);
  const provider = await loadAttestationProvider(p.attestation, measurement);
  const tee = provider instanceof EnclaveError ? fallbackTee(p.attestation) : { teeType: provider.teeType, simulated: provider.simulated };
  const chain = new VaultChain(p.chain);
  const service = new VaultService({ keys, chain, ...opened, measurement: `0x${measurement}` });
  const identity: EnclaveIdentity = {
    signer: keys.account.address,
    hpkePublicKey: toHex(keys.hpke.publicKey),
    provenanceKey: toHex(keys.provenance.spki),
    tlsKey: toHex(keys.tls.spki),
    measurement,
    teeType: tee.teeType,
    simulated: tee.simulated,
  };
  let peers: Ready["peers"];
  if (!(provider instanceof EnclaveError)) {
    const keyPair = { privateKey: keys.tls.privateKey, publicKey: createPublicKey({ key: Buffer.from(keys.tls.spki), format: "der", type: "spki" }) };
    let made: ReturnType<typeof createAttestedCertificate> | undefined;
    const certificate = () => (made ??= createAttestedCertificate({ provider, keyPair, signer: keys.account.address }));
    // Peers must run this very image: the policy accepts only this enclave's own measurement.
    const base = productionPolicy();
    const policy =
      p.attestation.provider === "sim" && typeof p.attestation.pkiDir === "string"
        ? { ...base, allowSimulation: true, simulatedRoots: [simRootDer(await loadOrCreateSimPki(p.attestation.pkiDir))], measurements: [measurement] }
        : { ...base, measurements: [measurement] };
    const verify: EvidenceVerifier = (evidence, expectedReportData) => verifyEvidence(evidence, { policy, expectedReportData });
    const net = createEnclaveNet({ channel: relayChannel, certificate });
    peers = { net, verify, sessions: new PeerSessions(net, verify) };
  }
  return { service, identity, keys, provider, dataDir: p.dataDir, ...(peers ? { peers } : {}) };
}

async function handle(method: VaultGateMethod, raw: unknown): Promise<unknown> {
  const parsed = vaultGateParams[method].safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new VaultEnclaveError("BAD_REQUEST", `the vault enclave refused a malformed ${method} request: ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  const params = parsed.data as never;
  if (method === "init") {
    const p = params as VaultGateParams<"init">;
    ready ??= initialize(p);
    const r = await ready.catch((e: unknown) => {
      ready = undefined;
      throw e;
    });
    if (r.dataDir !== p.dataDir) throw new VaultEnclaveError("BAD_REQUEST", `the vault enclave is already initialized with data dir ${r.dataDir}`);
    return { ...r.identity, state: r.service.state };
  }
  if (!ready) throw new VaultEnclaveError("NOT_INITIALIZED", `call init before ${method}`);
  const r = await ready;
  const s = r.service;
  switch (method) {
    case "attest": {
      if (r.provider instanceof EnclaveError) throw r.provider;
      const { freshness, operator } = params as VaultGateParams<"attest">;
      const k = r.keys;
      const reportData = enclaveReportData(
        { signer: k.account.address, hpkePublicKey: k.hpke.publicKey, provenanceKey: k.provenance.spki, tlsKey: k.tls.spki, operator },
        freshness ? fromHex(freshness) : undefined,
      );
      return { evidence: await r.provider.attest(reportData), reportData: bytesToHex(reportData) };
    }
    case "status":
      return s.status();
    case "store":
      return s.store(params);
    case "storeMany":
      return s.storeMany(params);
    case "importShares":
      return s.importShares(params);
    case "confirmations":
      return s.confirmations(params);
    case "markConfirmed":
      return s.markConfirmed(params);
    case "retrieve":
      return s.retrieve(params);
    case "exportShares":
      return s.exportShares(params);
    case "missing":
      return s.missing(params);
    case "held":
      return s.held(params);
    case "drop":
      return s.drop(params);
    case "reshareExport":
      return s.reshareExport(params);
    case "reshareDeal":
      return s.reshareDeal(params);
    case "reshareAccept":
      return s.reshareAccept(params);
    case "reshareCommit":
      return s.reshareCommit(params);
    case "listen": {
      if (!r.peers) throw new VaultEnclaveError("WRONG_STATE", "this vault enclave has no attestation provider, so no attested peer sessions");
      r.listener ??= await servePeers(r.peers.net, r.peers.verify, s);
      return r.listener.address;
    }
    case "fetchFrom": {
      if (!r.peers) throw new VaultEnclaveError("WRONG_STATE", "this vault enclave has no attestation provider, so no attested peer sessions");
      return r.peers.sessions.fetch(s, params as VaultGateParams<"fetchFrom">);
    }
    case "bootstrapFrom": {
      if (!r.peers) throw new VaultEnclaveError("WRONG_STATE", "this vault enclave has no attestation provider, so no attested peer sessions");
      return bootstrapFromPeer(r.peers.net, r.peers.verify, s, params as VaultGateParams<"bootstrapFrom">);
    }
    case "bootstrapDone":
      return s.bootstrapDone(params);
    case "advance":
      return s.advance(params);
  }
}

/** Typed errors cross with code and message; anything else as INTERNAL without details. */
function toGateError(e: unknown): { code: string; message: string } {
  if (e instanceof VaultEnclaveError || e instanceof EnclaveError || isVaultShareError(e)) return { code: e.code, message: e.message };
  if (e instanceof CloisterError) return { code: "INTERNAL", message: `internal vault enclave error (${e.code})` };
  return { code: "INTERNAL", message: `internal vault enclave error (${e instanceof Error ? e.name : typeof e})` };
}

process.on("message", (raw: unknown) => {
  // Relay frames (the enclave's own TLS sessions) are the relay channel's, never the gate's.
  if (isRelayFrame(raw)) return;
  const frame = vaultRequestFrameSchema.safeParse(raw);
  if (!frame.success) {
    const id = typeof (raw as { id?: unknown })?.id === "number" ? (raw as { id: number }).id : 0;
    process.send?.({ id, error: { code: "BAD_REQUEST", message: "the vault enclave refused a frame that is not { id, method, params }" } });
    return;
  }
  const { id, method, params } = frame.data;
  handle(method, params).then(
    (result) => process.send?.({ id, result: result ?? null }),
    (e: unknown) => {
      if (process.env.CLOISTER_VAULT_DEBUG === "1" && !(e instanceof CloisterError)) console.error(`vault enclave ${method}:`, e);
      process.send?.({ id, error: toGateError(e) });
    },
  );
});

process.on("disconnect", () => process.exit(0));
