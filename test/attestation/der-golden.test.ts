/**
 * The simulated PKI is signed and hashed (its root is pinned, its certificates
 * travel in quotes), so moving its DER encoding onto asn1js must not change a
 * byte. The expected values were taken from the hand-written encoders the
 * library replaced, for the same fixed inputs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
// @peculiar/x509 needs the Reflect metadata polyfill loaded before it.
import "reflect-metadata";
import { X509Certificate as PeculiarCertificate } from "@peculiar/x509";
import { createAttestedCertificate } from "../../src/attestation/atls/certificate.ts";
import { decodeEndorsements, encodeClaims, encodeEndorsements, encodeTaggedEvidence, readAttestationExtensions } from "../../src/attestation/atls/extensions.ts";
import { createSimPki, getSimPlatform, issuePckCrl, issueRootCaCrl, pckChainPem } from "../../src/attestation/sim/pki.ts";
import { SimulatedProvider } from "../../src/attestation/sim/provider.ts";
import { encodeSgxExtension } from "../../src/attestation/sim/sgx-extension.ts";

/** An OCTET STRING's DER in hex, written out by hand as the reference. */
function octetStringHex(value: Uint8Array): string {
  const n = value.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return `04${Buffer.from(length).toString("hex")}${Buffer.from(value).toString("hex")}`;
}

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

test("the SGX PCK extension encodes byte for byte as before, including INTEGERs that need a leading zero", () => {
  const der = encodeSgxExtension({
    ppid: new Uint8Array(16).fill(0xab),
    tcbComponents: [255, 128, 127, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    pceSvn: 0x8001,
    pceId: Uint8Array.of(0, 1),
    fmspc: Uint8Array.of(1, 2, 3, 4, 5, 6),
    sgxType: 0,
  });
  assert.equal(
    Buffer.from(der).toString("hex"),
    "308201c4301e060a2a864886f84d010d01010410abababababababababababababababab30820167060a2a864886f84d010d0102308201573011060b2a864886f84d010d010201020200ff3011060b2a864886f84d010d010202020200803010060b2a864886f84d010d01020302017f3010060b2a864886f84d010d0102040201003010060b2a864886f84d010d0102050201013010060b2a864886f84d010d0102060201023010060b2a864886f84d010d0102070201033010060b2a864886f84d010d0102080201043010060b2a864886f84d010d0102090201053010060b2a864886f84d010d01020a0201063010060b2a864886f84d010d01020b0201073010060b2a864886f84d010d01020c0201083010060b2a864886f84d010d01020d0201093010060b2a864886f84d010d01020e02010a3010060b2a864886f84d010d01020f02010b3010060b2a864886f84d010d01021002010c3012060b2a864886f84d010d0102110203008001301f060b2a864886f84d010d0102120410ff807f000102030405060708090a0b0c3010060a2a864886f84d010d0103040200013014060a2a864886f84d010d01040406010203040506300f060a2a864886f84d010d01050a0100",
  );
});

test("a seeded simulated PKI gives the same PCK chain and CRLs as before", async () => {
  const pki = await createSimPki({ seed: "5a".repeat(32) });
  assert.equal(sha256(pckChainPem(pki, getSimPlatform(pki))), "9160d0a9ef8da62495f9636c025519f626518c61a2a2d78823b9f456df935ef7");
  const window = { thisUpdate: new Date("2026-01-01T00:00:00Z"), nextUpdate: new Date("2026-02-01T00:00:00Z") };
  assert.equal(sha256(await issuePckCrl(pki, window)), "881bfdcbb064573615fc02ea13dc21ee886ecd02d9dc76f7920de70f8e6b113d");
  assert.equal(sha256(await issueRootCaCrl(pki, window)), "e33d9fc019a19a9e7dcf5270f3648d6691b134de2b85d79d003bcad04c0c5cc8");
});

test("an attested TLS certificate carries the TCG DICE evidence and endorsement extensions' bytes exactly as encoded", async () => {
  const pki = await createSimPki({ seed: "5a".repeat(32) });
  const provider = new SimulatedProvider({ pki, mrEnclave: "0a".repeat(32) });
  const freshness = new Uint8Array(32).fill(7);
  const cert = await createAttestedCertificate({ provider, freshness });
  assert.ok(cert.evidence.teeType === "SGX" && cert.evidence.collateral);
  const certHex = Buffer.from(cert.certDer).toString("hex");
  const spki = new X509Certificate(cert.certPem).publicKey.export({ type: "spki", format: "der" });
  const claims = encodeClaims(createHash("sha256").update(spki).digest(), { nonce: freshness });
  assert.deepEqual(cert.claimsBuffer, claims);
  // OID 2.23.133.5.4.9 (tagged evidence), then the OCTET STRING.
  assert.ok(certHex.includes(`0606678105050409${octetStringHex(encodeTaggedEvidence(cert.evidence.quote, claims))}`), "tagged evidence extension");
  // OID 2.23.133.5.4.2 (endorsement manifest), then the OCTET STRING.
  assert.ok(certHex.includes(`0606678105050402${octetStringHex(encodeEndorsements(cert.evidence.collateral))}`), "endorsement extension");
  assert.deepEqual([...new PeculiarCertificate(cert.certDer).extensions].map((e) => e.type), ["2.5.29.19", "2.23.133.5.4.9", "2.23.133.5.4.2"], "no 2.25 UUID-arc OID any more");
  assert.deepEqual(decodeEndorsements(readAttestationExtensions(cert.certDer).endorsements!), cert.evidence.collateral);
});
