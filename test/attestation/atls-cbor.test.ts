/**
 * Tagged evidence is carried, as encoded, in every attested TLS certificate
 * that Gramine-style verifiers read, and report_data binds the SHA-256 of its
 * claims buffer: the encoding must not change a byte. The expected bytes were
 * produced by the hand-written encoder cborg replaced, for the same inputs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { decode, encode, Tagged } from "cborg";
import { decodeEndorsements, decodeTaggedEvidence, encodeClaims, encodeEndorsements, encodeTaggedEvidence } from "../../src/attestation/atls/extensions.ts";
import { AttestedTlsError } from "../../src/attestation/atls/errors.ts";

const quote = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
const spkiHash = new Uint8Array(32).fill(0x11);
const freshness = new Uint8Array(32).fill(0x22);
const quoteHex = Buffer.from(quote).toString("hex");
const claims = encodeClaims(spkiHash, { nonce: freshness });

test("tagged evidence encodes byte for byte as before: tag 60000, [quote, claims], claims in insertion order", () => {
  const expected =
    `d9ea6082590${"12c"}${quoteHex}585ba26b7075626b65792d68617368582482015820${"11".repeat(32)}656e6f6e63655820${"22".repeat(32)}`;
  assert.equal(Buffer.from(encodeTaggedEvidence(quote, claims)).toString("hex"), expected);
});

const malformed = (pattern: RegExp) => (e: unknown) => e instanceof AttestedTlsError && e.code === "ATLS_EVIDENCE_MALFORMED" && pattern.test(e.message);

test("non-canonical, indefinite, duplicate-key and trailing-byte encodings are refused as malformed evidence", () => {
  const good = encodeTaggedEvidence(quote, claims);
  const decoded = decodeTaggedEvidence(good);
  assert.deepEqual(decoded.evidence, quote);
  assert.deepEqual(decoded.claimsBuffer, claims);
  assert.deepEqual(decoded.pubkeyHash, { algorithmId: 1, digest: spkiHash });
  assert.deepEqual(decoded.nonce, freshness);
  // The array header 0x82 written non-minimally as 0x98 0x02.
  const nonMinimal = Buffer.concat([good.subarray(0, 3), Uint8Array.of(0x98, 0x02), good.subarray(4)]);
  assert.throws(() => decodeTaggedEvidence(nonMinimal), malformed(/minimal|canonical|strict/i));
  // An indefinite-length array with a break.
  const indefinite = Buffer.concat([good.subarray(0, 3), Uint8Array.of(0x9f), good.subarray(4), Uint8Array.of(0xff)]);
  assert.throws(() => decodeTaggedEvidence(indefinite), malformed(/indefinite/i));
  assert.throws(() => decodeTaggedEvidence(Buffer.concat([good, Uint8Array.of(0)])), malformed(/.+/));
  // claims {"nonce": h'', "nonce": h''}
  const duplicate = Buffer.from("a2656e6f6e636540656e6f6e636540", "hex");
  const withDuplicate = Buffer.concat([Buffer.from("d9ea60824100", "hex"), Uint8Array.of(0x40 + duplicate.length), duplicate]);
  assert.throws(() => decodeTaggedEvidence(withDuplicate), malformed(/repeat map key "nonce"/));
});

test("Cloister's claims follow the standard ones, sorted by name, and must be named cloister-…", () => {
  const buffer = encodeClaims(spkiHash, { claims: { "cloister-z": Uint8Array.of(2), "cloister-a": Uint8Array.of(1) } });
  const decoded = decodeTaggedEvidence(encodeTaggedEvidence(quote, buffer));
  assert.deepEqual([...decoded.claims.keys()], ["pubkey-hash", "cloister-a", "cloister-z"]);
  assert.equal(decoded.nonce, undefined, "no nonce claim without freshness");
  for (const name of ["nonce", "pubkey-hash", "signer", "Cloister-x"]) {
    assert.throws(() => encodeClaims(spkiHash, { claims: { [name]: Uint8Array.of(1) } }), /must start with 'cloister-'/);
  }
});

test("endorsements: DCAP collateral round-trips through Open Enclave's field order; PEM or bare-DER CRLs are read too", () => {
  const crl = "3003020101";
  const collateral = {
    tcb_info: '{"id":"SGX","version":3}', tcb_info_signature: "ab".repeat(64), tcb_info_issuer_chain: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
    qe_identity: '{"id":"QE"}', qe_identity_signature: "cd".repeat(64), qe_identity_issuer_chain: "chain-2",
    pck_crl: crl, pck_crl_issuer_chain: "chain-3", root_ca_crl: "3003020102",
  };
  const encoded = encodeEndorsements(collateral);
  assert.deepEqual(decodeEndorsements(encoded), collateral);
  const items = (decode(encoded, { tags: Tagged.preserve(60000) }) as Tagged).value as Uint8Array[];
  assert.equal(items.length, 8);
  assert.equal(items[0], 1, "Open Enclave's endorsement version");
  assert.equal(Buffer.from(items[1]!).toString(), `{"tcbInfo":${collateral.tcb_info},"signature":"${collateral.tcb_info_signature}"}\0`);
  assert.equal(Buffer.from(items[3]!).toString("hex"), `${crl}00`, "DER, NUL-terminated as Open Enclave writes it");
  // Another stack's choices: a PEM CRL and a DER one without NUL.
  const other = [...items];
  other[3] = Buffer.from(`-----BEGIN X509 CRL-----\n${Buffer.from(crl, "hex").toString("base64")}\n-----END X509 CRL-----\n`);
  other[4] = Buffer.from("3003020102", "hex");
  assert.deepEqual(decodeEndorsements(encode(new Tagged(60000, other))), collateral);
});

test("endorsements: an SEV-SNP VCEK and chain round-trip in Cloister's own variant", () => {
  const snp = { vcek: Uint8Array.of(0x30, 0, 1, 2), chainPem: "ASK\nARK\n" };
  assert.deepEqual(decodeEndorsements(encodeEndorsements(snp)), snp);
  assert.throws(() => decodeEndorsements(Uint8Array.of(0xa0)), malformed(/endorsement extension is malformed/));
});
