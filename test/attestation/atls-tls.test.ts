import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { createSimPki, simRootDer } from "../../src/attestation/sim/pki.ts";
import { SimulatedProvider } from "../../src/attestation/sim/provider.ts";
import { verifyEvidence } from "../../src/attestation/verify.ts";
import { productionPolicy, type Policy } from "../../src/attestation/policy.ts";
import type { AttestationProvider, Evidence } from "../../src/attestation/types.ts";
import { attestedClaims, claimsReportData, createAttestedCertificate, verifyAttestedCertificate, type AttestedPeer, type EvidenceVerifier } from "../../src/attestation/atls/certificate.ts";
import { AttestedTlsError } from "../../src/attestation/atls/errors.ts";
import { decodeTaggedEvidence, DICE_TAGGED_EVIDENCE_OID, encodeClaims, encodeTaggedEvidence, GRAMINE_LEGACY_QUOTE_OID, readAttestationExtensions } from "../../src/attestation/atls/extensions.ts";
import { bitString, explicit, integer, octetString, oid, sequence, set, time, utf8String } from "./der-build.ts";
import { connectAttested, createAttestedServer } from "../../src/attestation/atls/tls.ts";

const pki = await createSimPki({ seed: "42".repeat(32) });
const MEASUREMENT_A = "a1".repeat(32);
const MEASUREMENT_B = "b2".repeat(32);
const MEASUREMENT_ROGUE = "0e".repeat(32);
const enclaveA = new SimulatedProvider({ pki, mrEnclave: MEASUREMENT_A });
const enclaveB = new SimulatedProvider({ pki, mrEnclave: MEASUREMENT_B });
const rogue = new SimulatedProvider({ pki, mrEnclave: MEASUREMENT_ROGUE });

// Each side's policy: simulation allowed (test network), only the two known enclaves.
const policy: Policy = { ...productionPolicy(), allowSimulation: true, simulatedRoots: [simRootDer(pki)], measurements: [MEASUREMENT_A, MEASUREMENT_B] };
const verify: EvidenceVerifier = (evidence, expectedReportData) => verifyEvidence(evidence, { policy, expectedReportData });

const nonce = () => new Uint8Array(randomBytes(32));

function isAtlsError(code: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof AttestedTlsError, `expected AttestedTlsError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  };
}

/** A plain self-signed P-256 certificate with the given extra extensions. */
function plainCertificate(extensions: Uint8Array[] = []) {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const alg = sequence(oid("1.2.840.10045.4.3.2"));
  const name = sequence(set(sequence(oid("2.5.4.3"), utf8String("plain"))));
  const spki = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  const tbs = sequence(explicit(0, integer(Uint8Array.of(2))), integer(Uint8Array.of(7)), alg, name,
    sequence(time(new Date(Date.now() - 60_000)), time(new Date(Date.now() + 3_600_000))), name, spki,
    ...(extensions.length ? [explicit(3, sequence(...extensions))] : []));
  return sequence(tbs, alg, bitString(sign("sha256", tbs, privateKey)));
}

const servers: { close(): void }[] = [];
after(() => servers.forEach((s) => s.close()));

async function listen(options: Parameters<typeof createAttestedServer>[0]) {
  const server = createAttestedServer(options);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** Runs one server; resolves with what the server saw (its verified client, or its refusal). */
async function serve(certificate: { certPem: string; keyPem: string }, peerFreshness?: Uint8Array) {
  let seen!: (v: { peer?: AttestedPeer; refused?: Error }) => void;
  const outcome = new Promise<{ peer?: AttestedPeer; refused?: Error }>((resolve) => (seen = resolve));
  const port = await listen({
    certificate, verify, ...(peerFreshness ? { peerFreshness } : {}),
    onPeer: (socket: TLSSocket, peer) => { seen({ peer }); socket.end("hello from server"); },
    onRefused: (error) => seen({ refused: error }),
  });
  return { port, outcome };
}

test("certificate round trip: evidence bound to the key and the nonce, verified with the real verifier", async () => {
  const freshness = nonce();
  const signer = "0x00000000000000000000000000000000000000a1";
  const cert = await createAttestedCertificate({ provider: enclaveA, freshness, signer, claims: { "cloister-role": Uint8Array.of(1) } });
  assert.match(cert.certPem, /BEGIN CERTIFICATE/);
  const peer = await verifyAttestedCertificate(cert.certDer, { verify, freshness });
  assert.equal(peer.claims.measurement, MEASUREMENT_A);
  assert.equal(peer.claims.simulated, true);
  // report_data = SHA-256(claims buffer) || 32 zero bytes; the claims carry SHA-256(SPKI) as pubkey-hash.
  assert.equal(peer.claims.reportData, `${createHash("sha256").update(cert.claimsBuffer).digest("hex")}${"00".repeat(32)}`);
  assert.deepEqual(cert.claimsBuffer, encodeClaims(createHash("sha256").update(peer.spki).digest(), { nonce: freshness, claims: { "cloister-role": Uint8Array.of(1), "cloister-signer": Buffer.from(signer.slice(2), "hex") } }));
  assert.deepEqual(peer.freshness, freshness);
  assert.equal(peer.certificate.keyBinding, true);
  assert.equal(peer.certificate.signer, signer);
  assert.deepEqual(peer.certificate.cloisterClaims["cloister-role"], Uint8Array.of(1));
});

test("two simulated enclaves connect over mutual TLS 1.3 and each sees the other's verified claims", async () => {
  const nonceForA = nonce(); // agreed out of band: B expects A's certificate to carry it
  const nonceForB = nonce();
  const certA = await createAttestedCertificate({ provider: enclaveA, freshness: nonceForA });
  const certB = await createAttestedCertificate({ provider: enclaveB, freshness: nonceForB });
  const server = await serve(certB, nonceForA);
  const { socket, peer } = await connectAttested({ host: "127.0.0.1", port: server.port, certificate: certA, verify, peerFreshness: nonceForB });
  const text = await new Promise<string>((resolve) => { let s = ""; socket.on("data", (d) => (s += d)); socket.on("end", () => resolve(s)); });
  const seen = await server.outcome;
  assert.equal(socket.getProtocol(), "TLSv1.3");
  assert.equal(peer.claims.measurement, MEASUREMENT_B);
  assert.equal(seen.refused, undefined);
  assert.equal(seen.peer?.claims.measurement, MEASUREMENT_A);
  assert.equal(text, "hello from server");
  socket.destroy();
});

test("a server with a wrong measurement is refused by the client with the policy's reason", async () => {
  const server = await serve(await createAttestedCertificate({ provider: rogue }));
  const certA = await createAttestedCertificate({ provider: enclaveA });
  await assert.rejects(
    connectAttested({ host: "127.0.0.1", port: server.port, certificate: certA, verify }),
    isAtlsError("ATLS_POLICY_REFUSED", new RegExp(`measurement ${MEASUREMENT_ROGUE}.*not allowed`)),
  );
});

test("a client with a wrong measurement is refused by the server and its connection closed", async () => {
  const server = await serve(await createAttestedCertificate({ provider: enclaveB }));
  const { socket } = await connectAttested({ host: "127.0.0.1", port: server.port, certificate: await createAttestedCertificate({ provider: rogue }), verify });
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => {});
  const seen = await server.outcome;
  assert.ok(seen.refused);
  isAtlsError("ATLS_POLICY_REFUSED", /not allowed by the policy/)(seen.refused);
  await closed;
});

test("a peer whose certificate carries a stale nonce is refused", async () => {
  const stale = nonce();
  const current = nonce();
  const server = await serve(await createAttestedCertificate({ provider: enclaveB, freshness: stale }));
  await assert.rejects(
    connectAttested({ host: "127.0.0.1", port: server.port, certificate: await createAttestedCertificate({ provider: enclaveA }), verify, peerFreshness: current }),
    isAtlsError("ATLS_FRESHNESS_MISMATCH", /stale or replayed/),
  );
});

test("a peer presenting evidence made for another key (swapped key) is refused", async () => {
  const victim = new Uint8Array(generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({ type: "spki", format: "der" }));
  // A genuine enclave's evidence, but for someone else's key, placed in the attacker's certificate.
  const swapping: AttestationProvider = {
    name: "swapping", teeType: "SGX", simulated: true,
    measurement: () => enclaveB.measurement(),
    attest: () => enclaveB.attest(claimsReportData(attestedClaims(victim))),
  };
  const server = await serve(await createAttestedCertificate({ provider: swapping }));
  await assert.rejects(
    connectAttested({ host: "127.0.0.1", port: server.port, certificate: await createAttestedCertificate({ provider: enclaveA }), verify }),
    isAtlsError("ATLS_KEY_MISMATCH", /report_data begins .* not SHA-256 of the claims/),
  );
});

test("evidence and claims copied whole from another certificate are refused: pubkey-hash names the other key", async () => {
  const genuine = await createAttestedCertificate({ provider: enclaveA });
  const copied = plainCertificate([sequence(oid(DICE_TAGGED_EVIDENCE_OID), octetString(readAttestationExtensions(genuine.certDer).evidence!))]);
  await assert.rejects(verifyAttestedCertificate(copied, { verify }), isAtlsError("ATLS_KEY_MISMATCH", /pubkey-hash .* is not the SHA256 of this certificate's public key/));
});

test("a certificate without an evidence extension is refused", async () => {
  await assert.rejects(verifyAttestedCertificate(plainCertificate(), { verify }), isAtlsError("ATLS_EVIDENCE_MISSING"));
});

test("Gramine's legacy extension (raw quote) is accepted on parse; collateral comes from the injected verifier", async () => {
  // A legacy certificate: the raw quote, bound to the certificate's key, in Gramine's old extension.
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const key = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  const evidence = await enclaveA.attest(Buffer.concat([createHash("sha256").update(key).digest(), new Uint8Array(32)])) as Extract<Evidence, { teeType: "SGX" | "TDX" }>;
  const alg = sequence(oid("1.2.840.10045.4.3.2"));
  const name = sequence(set(sequence(oid("2.5.4.3"), utf8String("RATLS"))));
  const tbs = sequence(explicit(0, integer(Uint8Array.of(2))), integer(Uint8Array.of(1)), alg, name,
    sequence(time(new Date(Date.now() - 60_000)), time(new Date(Date.now() + 3_600_000))), name, key,
    explicit(3, sequence(sequence(oid(GRAMINE_LEGACY_QUOTE_OID), octetString(evidence.quote)))));
  const der = sequence(tbs, alg, bitString(sign("sha256", tbs, privateKey)));
  const withCollateral: EvidenceVerifier = (ev, rd) => verifyEvidence({ ...ev, collateral: evidence.collateral } as Evidence, { policy, expectedReportData: rd });
  const peer = await verifyAttestedCertificate(der, { verify: withCollateral });
  assert.equal(peer.claims.measurement, MEASUREMENT_A);
  await assert.rejects(verifyAttestedCertificate(der, { verify }), isAtlsError("ATLS_EVIDENCE_INVALID", /COLLATERAL/));
});

test("freshness may be a test: any of the recent block hashes is accepted, others are not", async () => {
  const recent = [nonce(), nonce(), nonce()];
  const isRecent = (f: Uint8Array) => recent.some((h) => Buffer.from(h).equals(f));
  const fresh = await createAttestedCertificate({ provider: enclaveA, freshness: recent[1] });
  assert.equal((await verifyAttestedCertificate(fresh.certDer, { verify, freshness: isRecent })).claims.measurement, MEASUREMENT_A);
  const old = await createAttestedCertificate({ provider: enclaveA, freshness: nonce() });
  await assert.rejects(verifyAttestedCertificate(old.certDer, { verify, freshness: isRecent }), isAtlsError("ATLS_FRESHNESS_MISMATCH"));
});

test("tagged evidence follows Gramine's encoding and malformed encodings are refused", () => {
  const quote = new Uint8Array([1, 2, 3]);
  const claims = encodeClaims(new Uint8Array(32).fill(7), { nonce: new Uint8Array(32).fill(9) });
  const encoded = encodeTaggedEvidence(quote, claims);
  assert.deepEqual([...encoded.subarray(0, 4)], [0xd9, 0xea, 0x60, 0x82]); // tag(60000), array(2)
  const decoded = decodeTaggedEvidence(encoded);
  assert.deepEqual([decoded.evidence, decoded.claimsBuffer], [quote, claims]);
  const wrongTag = Uint8Array.from(encoded);
  wrongTag[2] = 0x61;
  assert.throws(() => decodeTaggedEvidence(wrongTag), isAtlsError("ATLS_EVIDENCE_MALFORMED", /tag 60001/));
  assert.throws(() => decodeTaggedEvidence(encoded.subarray(0, encoded.length - 1)), isAtlsError("ATLS_EVIDENCE_MALFORMED", /truncated/));
});
