/**
 * A partner's attested TLS peer is checked once: the handshake's verifier remembers which expected peer's
 * manifest policy accepted which evidence, and tlsPeerParty skips only that exact repeat. Evidence accepted
 * under another party's policy, or another handshake's result, is still checked (and refused) here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { zeroAddress, zeroHash, type Hex } from "viem";
import { createSimPki, simRootDer } from "../../../src/attestation/sim/pki.ts";
import { SimulatedProvider } from "../../../src/attestation/sim/provider.ts";
import { createAttestedCertificate, verifyAttestedCertificate, type AttestedPeer } from "../../../src/attestation/atls/certificate.ts";
import { tlsPeerParty, tlsVerifier, type CheckedCollaboration } from "../../../src/enclave/jobs/collab/verify.ts";
import type { CollabPeer } from "../../../src/enclave/jobs/collab-params.ts";
import { CollabJobError } from "../../../src/enclave/jobs/collab/errors.ts";

const pki = await createSimPki({ seed: "17".repeat(32) });
const MEASUREMENT_1 = "a1".repeat(32);
const MEASUREMENT_2 = "b2".repeat(32);
const root = Buffer.from(simRootDer(pki)).toString("base64");

/** A manifest whose task role accepts only `measurement` (simulated evidence allowed, as on a test network). */
const manifest = (measurement: string) =>
  JSON.stringify({ version: 1, packages: { code: { measurements: [measurement] } }, roles: { task: { packages: ["code"] } }, attestation: { allowSimulation: true, simulatedRoots: [root] } });

function keyPair() {
  const pair = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return { pair, tlsKey: `0x${pair.publicKey.export({ type: "spki", format: "der" }).toString("hex")}` as Hex };
}

const signer1 = "0x00000000000000000000000000000000000000a1";
const signer2 = "0x00000000000000000000000000000000000000b2";
const key1 = keyPair();
const key2 = keyPair();
// Only what tlsPeerParty reads of a peer: its party, signer, TLS key, manifest and role.
const peer = (party: number, signer: string, tlsKey: Hex, measurement: string) =>
  ({ party, signer, tlsKey, manifest: manifest(measurement), role: "task", hpkePublicKey: zeroHash, provenanceKey: "0x", operator: zeroAddress, evidence: {} }) as unknown as CollabPeer;
const party1 = peer(1, signer1, key1.tlsKey, MEASUREMENT_1);
const party2 = peer(2, signer2, key2.tlsKey, MEASUREMENT_2);
const checked = { terms: { allowSimulated: true, parties: [0, 1, 2].map(() => ({ measurement: zeroHash })) } } as unknown as CheckedCollaboration;

/** A handshake: the certificate an enclave of `measurement` makes for `key` naming `signer`, checked by `verify`. */
async function handshake(measurement: string, key: ReturnType<typeof keyPair>, signer: string, verify: ReturnType<typeof tlsVerifier>): Promise<AttestedPeer> {
  const cert = await createAttestedCertificate({ provider: new SimulatedProvider({ pki, mrEnclave: measurement }), keyPair: key.pair, signer });
  return verifyAttestedCertificate(cert.certDer, { verify: verify.verify });
}

const refused = (pattern: RegExp) => (e: unknown) => e instanceof CollabJobError && e.code === "COLLAB_PEER_REFUSED" && pattern.test(e.message);

test("a peer accepted by the handshake under its own party's policy is not checked again, and is that party", async () => {
  const verifier = tlsVerifier([party1, party2]);
  const tls = await handshake(MEASUREMENT_2, key2, signer2, verifier);
  assert.equal(verifier.acceptedAs(party2, tls), true);
  assert.equal(verifier.acceptedAs(party1, tls), false);
  assert.equal(await tlsPeerParty(checked, tls, [party1, party2], verifier), party2);
});

test("a peer accepted by the handshake under another party's policy is still refused", async () => {
  const verifier = tlsVerifier([party1, party2]);
  // Party 1's code (accepted by party 1's manifest in the handshake) with party 2's TLS key and signer.
  const tls = await handshake(MEASUREMENT_1, key2, signer2, verifier);
  assert.equal(verifier.acceptedAs(party2, tls), false);
  await assert.rejects(tlsPeerParty(checked, tls, [party1, party2], verifier), refused(/party 2's TLS evidence is not accepted by its pinned manifest/));
});

test("another handshake's acceptance, or a changed evidence or report data, is no exact repeat", async () => {
  const verifier = tlsVerifier([party1, party2]);
  const other = tlsVerifier([party1, party2]);
  const tls = await handshake(MEASUREMENT_2, key2, signer2, verifier);
  // The same handshake result seen by a verifier that did not produce it.
  assert.equal(other.acceptedAs(party2, tls), false);
  assert.equal(verifier.acceptedAs(party2, { ...tls, evidence: { ...tls.evidence } }), false);
  const reportData = Uint8Array.from(tls.certificate.reportData);
  reportData[0]! ^= 1;
  assert.equal(verifier.acceptedAs(party2, { ...tls, certificate: { ...tls.certificate, reportData } }), false);
  // Evidence the handshake accepted for party 1, presented as another handshake's result for party 2's key.
  const first = await handshake(MEASUREMENT_1, key1, signer1, verifier);
  const second = await handshake(MEASUREMENT_2, key2, signer2, verifier);
  assert.equal(verifier.acceptedAs(party2, { ...second, result: first.result }), false);
});

test("without the handshake's verifier, every check is made: the wrong party's code is refused", async () => {
  const verifier = tlsVerifier([party1, party2]);
  const tls = await handshake(MEASUREMENT_1, key2, signer2, verifier);
  await assert.rejects(tlsPeerParty(checked, tls, [party1, party2]), refused(/not accepted by its pinned manifest/));
  const own = await handshake(MEASUREMENT_2, key2, signer2, verifier);
  assert.equal(await tlsPeerParty(checked, own, [party1, party2]), party2);
});

test("a peer with an expected key that names another signer is refused before any evidence check", async () => {
  const verifier = tlsVerifier([party1, party2]);
  const tls = await handshake(MEASUREMENT_2, key2, signer1, verifier);
  await assert.rejects(tlsPeerParty(checked, tls, [party1, party2], verifier), refused(/party 2's key names another signer/));
});
