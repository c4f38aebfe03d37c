/**
 * The checks both clean-room jobs make before touching any data: the terms are the ones whose hash every
 * party signed (EIP-712 Approval recovered here, in the enclave), the SQL and the policy are the approved
 * ones, a peer enclave is attested under the manifest and measurement the terms pin for its party, and a
 * party's own dataset descriptors open (sealed to this enclave) and hash to what the terms name.
 */
import { hashTypedData, isAddressEqual, zeroAddress, zeroHash, type Address, type Hex } from "viem";
import { manifestDigest, parseManifest, policyForRole } from "../../../attestation/manifest/index.ts";
import type { AttestedPeer, EvidenceVerifier } from "../../../attestation/atls/certificate.ts";
import type { Policy } from "../../../attestation/policy.ts";
import type { Evidence, VerificationResult } from "../../../attestation/types.ts";
import { verifyEvidence } from "../../../attestation/verify.ts";
import { onChainMeasurement } from "../../../chain/actions/register-enclave.ts";
import { fromHex } from "../../../crypto/bytes.ts";
import { signerKeys } from "../../../crypto/secp256k1-signers.ts";
import { enclaveReportData } from "../../../protocol/binding.ts";
import { collabDatasetsDigest, collabDatasetsInfo, collabPolicyDigest, decodePartyDatasets, openCollabBlob, type CollabBinding, type CollabPartyDatasets } from "../../../protocol/collab-run.ts";
import { approvalTypes, collaborationsDomain, manifestRoleId, queryDigest, termsHash, type CollaborationTerms } from "../../../protocol/collaboration.ts";
import { parseOutputPolicy, type OutputPolicy } from "../../cleanroom/policy.ts";
import { withParser } from "../../cleanroom/parser.ts";
import { checkQuery } from "../../cleanroom/query-check.ts";
import type { EnclaveContext } from "../job-module.ts";
import type { CollabJobCollaboration, CollabPeer } from "../collab-params.ts";
import { CollabJobError } from "./errors.ts";

export interface CheckedCollaboration {
  binding: CollabBinding;
  terms: CollaborationTerms;
  termsHash: Hex;
  sql: string;
  policy: OutputPolicy;
  /** The policy as approved (JSON), for the provenance. */
  policyJson: unknown;
}

/** The terms, the approvals of every party, the SQL and the policy. */
export async function checkCollaboration(c: CollabJobCollaboration): Promise<CheckedCollaboration> {
  const terms = c.terms as CollaborationTerms;
  if (terms.computeParty >= terms.parties.length) throw new CollabJobError("COLLAB_TERMS_INVALID", `the terms name compute party ${terms.computeParty} of ${terms.parties.length}`);
  if (c.partyNames.length !== terms.parties.length || new Set(c.partyNames).size !== c.partyNames.length) {
    throw new CollabJobError("COLLAB_TERMS_INVALID", `the job names ${c.partyNames.length} distinct party names for ${terms.parties.length} parties`);
  }
  const hash = termsHash(terms);
  const domain = collaborationsDomain(c.chainId, c.contract);
  if (c.approvals.length !== terms.parties.length) {
    throw new CollabJobError("COLLAB_NOT_APPROVED", `the job carries ${c.approvals.length} approvals for ${terms.parties.length} parties; every party must approve these terms`);
  }
  for (const [i, party] of terms.parties.entries()) {
    const approval = c.approvals[i]!;
    const digest = hashTypedData({
      domain,
      types: approvalTypes,
      primaryType: "Approval",
      message: { collaborationId: c.id, termsHash: hash, queryDigest: terms.queryDigest, policyDigest: terms.policyDigest, nonce: approval.nonce },
    });
    let signed = false;
    try {
      // libsecp256k1 recovery (crypto/secp256k1-native.ts): viem's noble recovery costs each enclave milliseconds per party, on the run's critical path.
      signed = signerKeys.check(fromHex(digest), fromHex(approval.signature), party.account).ok;
    } catch {
      // reported below
    }
    if (!signed) {
      throw new CollabJobError(
        "COLLAB_NOT_APPROVED",
        `party ${i} (${c.partyNames[i]}, ${party.account}) did not sign an approval of these terms (terms hash ${hash}) for collaboration ${c.id}: the terms, query or policy differ from what it approved`,
        { details: { party: i } },
      );
    }
  }
  const sql = terms.queryText !== "" ? terms.queryText : (c.queryText ?? "");
  if (queryDigest(sql).toLowerCase() !== terms.queryDigest.toLowerCase()) {
    throw new CollabJobError("COLLAB_QUERY_NOT_APPROVED", `the SQL text given does not hash to the approved query digest ${terms.queryDigest}: only the approved query runs`);
  }
  let policyJson: unknown;
  try {
    policyJson = JSON.parse(c.policy);
  } catch {
    throw new CollabJobError("COLLAB_POLICY_MISMATCH", "the output policy is not JSON");
  }
  if (collabPolicyDigest(policyJson as never).toLowerCase() !== terms.policyDigest.toLowerCase()) {
    throw new CollabJobError("COLLAB_POLICY_MISMATCH", `the output policy given does not hash to the approved policy digest ${terms.policyDigest}`);
  }
  const policy = parseOutputPolicy(policyJson);
  if (policy.dp && terms.dpBudget === 0n) throw new CollabJobError("COLLAB_POLICY_MISMATCH", "the policy asks for differential privacy but the terms set no DP budget");
  return { binding: { chainId: c.chainId, contract: c.contract, collaborationId: c.id }, terms, termsHash: hash, sql, policy, policyJson };
}

/** Attests a peer enclave for `party` under the manifest, role, measurement and operator its terms pin. Returns its measurement. */
export async function verifyPeer(checked: CheckedCollaboration, peer: CollabPeer, party: number): Promise<{ signer: Address; measurement: string }> {
  const want = checked.terms.parties[party];
  const who = `the enclave ${peer.signer} introduced for party ${party}`;
  if (!want || peer.party !== party) throw new CollabJobError("COLLAB_PEER_REFUSED", `${who} is introduced as party ${peer.party}`);
  if (want.manifestDigest === zeroHash) throw new CollabJobError("COLLAB_PEER_REFUSED", `the terms pin no policy manifest for party ${party}: its enclave's evidence cannot be checked against a vendor root`);
  let manifest;
  try {
    manifest = parseManifest(JSON.parse(peer.manifest));
  } catch {
    throw new CollabJobError("COLLAB_PEER_REFUSED", `${who} comes with a manifest that does not parse`);
  }
  if (manifestDigest(manifest).toLowerCase() !== want.manifestDigest.toLowerCase()) {
    throw new CollabJobError("COLLAB_PEER_REFUSED", `${who} comes with a manifest whose digest is not the one the terms pin (${want.manifestDigest})`);
  }
  if (manifestRoleId(peer.role).toLowerCase() !== want.manifestRole.toLowerCase() || !manifest.roles[peer.role]) {
    throw new CollabJobError("COLLAB_PEER_REFUSED", `${who} is checked under role "${peer.role}", not the role the terms pin`);
  }
  if (want.operator !== zeroAddress && !isAddressEqual(want.operator, peer.operator)) {
    throw new CollabJobError("COLLAB_PEER_REFUSED", `${who} runs for operator ${peer.operator}; the terms require ${want.operator}`);
  }
  const expectedReportData = enclaveReportData(
    { signer: peer.signer, hpkePublicKey: fromHex(peer.hpkePublicKey), provenanceKey: fromHex(peer.provenanceKey), tlsKey: fromHex(peer.tlsKey), operator: peer.operator },
    peer.freshness ? fromHex(peer.freshness) : undefined,
  );
  const result = await verifyEvidence(peer.evidence as never, { policy: policyForRole(manifest, peer.role), expectedReportData });
  if (!result.ok || !result.accepted || !result.claims) {
    throw new CollabJobError("COLLAB_PEER_REFUSED", `${who} failed attestation: ${result.error ?? result.reasons.join("; ")}`, { details: { party } });
  }
  const claims = result.claims;
  if (claims.simulated && !checked.terms.allowSimulated) throw new CollabJobError("COLLAB_PEER_REFUSED", `${who} runs on a simulated TEE and the terms do not allow one`);
  if (want.measurement !== zeroHash && onChainMeasurement(`0x${claims.measurement}`).toLowerCase() !== want.measurement.toLowerCase()) {
    throw new CollabJobError("COLLAB_PEER_REFUSED", `${who} has measurement ${claims.measurement}; the terms require ${want.measurement}`, { details: { party } });
  }
  return { signer: peer.signer, measurement: claims.measurement };
}

/**
 * The party's descriptors (credentials included) and the chain endpoints it trusts, if any, sealed to this
 * enclave, checked against the terms' datasetsDigest (which binds the endpoints too).
 */
export async function openDatasets(ctx: EnclaveContext, checked: CheckedCollaboration, party: number, sealed: Uint8Array): Promise<CollabPartyDatasets> {
  const what = `party ${party}'s sealed dataset descriptors`;
  const plain = await openCollabBlob(ctx.keys.hpke.privateKey, collabDatasetsInfo(checked.binding, party), sealed, what);
  let opened: CollabPartyDatasets;
  try {
    opened = decodePartyDatasets(plain, what);
  } finally {
    plain.fill(0);
  }
  if (Object.keys(opened.datasets).length === 0) throw new CollabJobError("COLLAB_DATASETS_MISMATCH", `party ${party}'s sealed descriptors name no dataset`);
  if (collabDatasetsDigest(opened).toLowerCase() !== checked.terms.parties[party]!.datasetsDigest.toLowerCase()) {
    throw new CollabJobError("COLLAB_DATASETS_MISMATCH", `party ${party}'s dataset descriptors (and chain endpoints) are not the ones the terms name (datasetsDigest ${checked.terms.parties[party]!.datasetsDigest})`);
  }
  for (const name of Object.keys(opened.datasets)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) throw new CollabJobError("COLLAB_DATASET_NAME", `dataset name "${name}" is not a plain SQL identifier`);
  }
  return opened;
}

/**
 * The approved SQL against the output policy, on DuckDB's parse tree, with no table and no data: every party's
 * enclave makes this check before it reads a row, so a row-level query is refused before any data is read.
 */
export async function checkQueryUnderPolicy(checked: CheckedCollaboration): Promise<void> {
  await withParser((connection) => checkQuery(connection, checked.sql, checked.policy));
}

function manifestPolicy(peer: CollabPeer) {
  return policyForRole(parseManifest(JSON.parse(peer.manifest)), peer.role);
}

/**
 * The attested-TLS verifier for the peers a job expects (already checked by verifyPeer), one per listener or
 * connection: `verify` accepts evidence when one of their manifests' policies accepts it (the manifests are
 * parsed at the first handshake). Which peer it is, is decided after the handshake by the certificate's key
 * (tlsPeerParty); `acceptedAs` lets that check skip verifying the same evidence again under the same policy.
 */
export interface CollabTlsVerifier {
  readonly verify: EvidenceVerifier;
  /**
   * Whether this verifier's handshake check produced `tls.result`, for exactly `tls.evidence` and the report data
   * its certificate binds, under `peer`'s own manifest policy. Acceptance under another peer's policy does not count.
   */
  acceptedAs(peer: CollabPeer, tls: AttestedPeer): boolean;
}

/** What the handshake's check accepted: under whose policy, which evidence, for which report data. */
interface Acceptance {
  peer: CollabPeer;
  evidence: Evidence;
  reportData: Uint8Array;
}

export function tlsVerifier(peers: readonly CollabPeer[]): CollabTlsVerifier {
  let policies: { peer: CollabPeer; policy: Policy }[] | undefined;
  // Keyed by the result object verifyEvidence made for one handshake: the AttestedPeer of that handshake carries it.
  const accepted = new WeakMap<VerificationResult, Acceptance>();
  return {
    async verify(evidence, expectedReportData) {
      policies ??= peers.map((peer) => ({ peer, policy: manifestPolicy(peer) }));
      let last;
      for (const { peer, policy } of policies) {
        last = await verifyEvidence(evidence, { policy, expectedReportData });
        if (last.ok && last.accepted) {
          accepted.set(last, { peer, evidence, reportData: Uint8Array.from(expectedReportData) });
          return last;
        }
      }
      return last!;
    },
    acceptedAs(peer, tls) {
      const a = accepted.get(tls.result);
      return a !== undefined && a.peer === peer && a.evidence === tls.evidence && Buffer.from(a.reportData).equals(tls.certificate.reportData) && tls.result.ok && tls.result.accepted && tls.claims === tls.result.claims;
    },
  };
}

/**
 * The party of an attested TLS peer: the one whose verified evidence binds this certificate key (the enclave's
 * sealed TLS key), whose signer the certificate names, whose manifest policy accepts the certificate's
 * evidence, and whose measurement the terms pin. The policy check is the handshake's own when `verifier`
 * accepted this very evidence under this peer's policy; otherwise it is made here.
 */
export async function tlsPeerParty(checked: CheckedCollaboration, tls: AttestedPeer, peers: readonly CollabPeer[], verifier?: CollabTlsVerifier): Promise<CollabPeer> {
  const spki = Buffer.from(tls.spki).toString("hex");
  const peer = peers.find((p) => p.tlsKey.slice(2).toLowerCase() === spki);
  if (!peer) throw new CollabJobError("COLLAB_PEER_REFUSED", "an attested peer connected with a TLS key that no expected party's enclave has");
  if (!tls.certificate.signer || !isAddressEqual(tls.certificate.signer as Address, peer.signer)) {
    throw new CollabJobError("COLLAB_PEER_REFUSED", `the TLS peer with party ${peer.party}'s key names another signer`);
  }
  if (!verifier?.acceptedAs(peer, tls)) {
    const result = await verifyEvidence(tls.evidence, { policy: manifestPolicy(peer), expectedReportData: tls.certificate.reportData });
    if (!result.ok || !result.accepted) throw new CollabJobError("COLLAB_PEER_REFUSED", `party ${peer.party}'s TLS evidence is not accepted by its pinned manifest: ${result.error ?? result.reasons.join("; ")}`);
  }
  const want = checked.terms.parties[peer.party]!;
  if (want.measurement !== zeroHash && onChainMeasurement(`0x${tls.claims.measurement}`).toLowerCase() !== want.measurement.toLowerCase()) {
    throw new CollabJobError("COLLAB_PEER_REFUSED", `party ${peer.party}'s TLS peer has measurement ${tls.claims.measurement}; the terms require ${want.measurement}`);
  }
  if (tls.claims.simulated && !checked.terms.allowSimulated) throw new CollabJobError("COLLAB_PEER_REFUSED", `party ${peer.party}'s TLS peer runs on a simulated TEE and the terms do not allow one`);
  return peer;
}
