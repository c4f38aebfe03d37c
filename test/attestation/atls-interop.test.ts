/**
 * Interoperable RA-TLS: Cloister reads certificates other stacks made (the
 * Intel SGX SDK's vector in shared/testdata/atls; Gramine's and RATS-TLS's
 * when the lead has placed them there) and finds their key binding; tampered
 * copies lose it with a reason. Every extension Cloister writes parses in
 * @peculiar/x509, OpenSSL and Python `cryptography`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, generateKeyPairSync, sign } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
// @peculiar/x509 needs the Reflect metadata polyfill loaded before it.
import "reflect-metadata";
import { X509Certificate as PeculiarCertificate } from "@peculiar/x509";
import { createAttestedCertificate, verifyAttestedCertificate } from "../../src/attestation/atls/certificate.ts";
import { AttestedTlsError } from "../../src/attestation/atls/errors.ts";
import { DICE_ENDORSEMENT_MANIFEST_OID, DICE_TAGGED_EVIDENCE_OID, readAttestationExtensions } from "../../src/attestation/atls/extensions.ts";
import { certificateDer, evidenceOf, readAttestedCertificate } from "../../src/attestation/atls/reader.ts";
import { createSimPki } from "../../src/attestation/sim/pki.ts";
import { SimulatedProvider } from "../../src/attestation/sim/provider.ts";
import { verifyEvidence } from "../../src/attestation/verify.ts";
import { productionPolicy } from "../../src/attestation/policy.ts";
import type { AttestationProvider } from "../../src/attestation/types.ts";
import { caseNamed, vectorBytes, vectorCollateral } from "./dcap-helpers.ts";
import { bitString, explicit, integer, octetString, oid, sequence, set, time, utf8String } from "./der-build.ts";

const vectors = fileURLToPath(new URL("../../../shared/testdata/atls/", import.meta.url));
const vector = (name: string) => certificateDer(readFileSync(`${vectors}${name}`));
const intel = vector("intel-sgxsdk-cert.pem");
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A self-signed certificate for a fresh key carrying exactly these extensions. */
function certificateWith(extensions: Uint8Array[], curve = "secp384r1"): Uint8Array {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: curve });
  const alg = sequence(oid("1.2.840.10045.4.3.2"));
  const name = sequence(set(sequence(oid("2.5.4.3"), utf8String("swapped"))));
  const tbs = sequence(explicit(0, integer(Uint8Array.of(2))), integer(Uint8Array.of(9)), alg, name,
    sequence(time(new Date(Date.now() - 60_000)), time(new Date(Date.now() + 3_600_000))), name,
    new Uint8Array(publicKey.export({ type: "spki", format: "der" })), explicit(3, sequence(...extensions)));
  return sequence(tbs, alg, bitString(sign("sha256", tbs, privateKey)));
}

test("the Intel SGX SDK's certificate: tagged evidence read, SGX quote, pubkey-hash and report_data bind its key", () => {
  const info = readAttestedCertificate(intel);
  assert.equal(info.format, "tcg-dice");
  assert.equal(info.teeType, "SGX");
  assert.equal(info.keyType, "ec secp384r1");
  assert.equal(info.selfSigned, true);
  assert.deepEqual([...info.claims.keys()], ["pubkey-hash"]);
  assert.equal(info.pubkeyHash?.algorithmId, 1);
  assert.equal(Buffer.from(info.pubkeyHash!.digest).toString("hex"), sha256(info.spki));
  assert.equal(Buffer.from(info.reportData.subarray(0, 32)).toString("hex"), sha256(info.claimsBuffer!));
  assert.deepEqual(info.keyBindingErrors, []);
  assert.equal(info.keyBinding, true);
  assert.equal(info.collateral, undefined, "it carries no endorsements");
});

test("the Intel SGX SDK's certificate with one claims byte flipped loses the key binding, saying why", () => {
  const claims = readAttestedCertificate(intel).claimsBuffer!;
  const at = Buffer.from(intel).indexOf(Buffer.from(claims));
  assert.ok(at > 0);
  const tampered = Uint8Array.from(intel);
  tampered[at + claims.length - 1]! ^= 0x01; // the last byte of the pubkey-hash digest
  const info = readAttestedCertificate(tampered);
  assert.equal(info.keyBinding, false);
  assert.equal(info.selfSigned, false, "the certificate's own signature breaks too");
  assert.equal(info.keyBindingErrors.length, 2);
  assert.match(info.keyBindingErrors[0]!, /pubkey-hash [0-9a-f]{64} is not the SHA256 of this certificate's public key/);
  assert.match(info.keyBindingErrors[1]!, /report_data begins [0-9a-f]{64}, not SHA-256 of the claims/);
});

test("the Intel SGX SDK's evidence moved into a certificate for another key loses the key binding: pubkey-hash names the other key", () => {
  const evidence = readAttestationExtensions(intel).evidence!;
  for (const curve of ["secp384r1", "prime256v1"]) {
    const info = readAttestedCertificate(certificateWith([sequence(oid(DICE_TAGGED_EVIDENCE_OID), octetString(evidence))], curve));
    assert.equal(info.selfSigned, true);
    assert.equal(info.keyBinding, false);
    assert.equal(info.keyBindingErrors.length, 1, "report_data still matches the (unchanged) claims");
    assert.match(info.keyBindingErrors[0]!, /another key/);
  }
});

test("the Intel SGX SDK's certificate is refused over TLS for want of collateral (its key binding holds)", async () => {
  const verify = (ev: Parameters<typeof verifyEvidence>[0], rd: Uint8Array) => verifyEvidence(ev, { policy: productionPolicy(), expectedReportData: rd });
  await assert.rejects(verifyAttestedCertificate(intel, { verify }), (e: unknown) => e instanceof AttestedTlsError && e.code === "ATLS_EVIDENCE_INVALID" && /COLLATERAL/.test(e.message));
  assert.equal(evidenceOf(readAttestedCertificate(intel)).teeType, "SGX");
});

for (const [name, claimNames] of [["gramine-cert.pem", ["pubkey-hash"]], ["rats-tls-cert.pem", ["pubkey-hash", "key_0", "key_1"]]] as const) {
  const present = existsSync(`${vectors}${name}`);
  test(`${name} (CCC interoperable-ra-tls, interoperability-tests/): parsed and key binding found`, { skip: present ? false : `${name} is not in shared/testdata/atls (the lead may add it with its source and license)` }, () => {
    const info = readAttestedCertificate(vector(name));
    assert.equal(info.format, "tcg-dice");
    assert.equal(info.teeType, "SGX");
    assert.deepEqual([...info.claims.keys()], claimNames);
    assert.deepEqual(info.keyBindingErrors, []);
    assert.equal(info.keyBinding, true);
  });
}

test("a real TDX v4 quote with Intel's collateral: read as TDX, the collateral carried in the endorsement manifest verifies as before", async () => {
  const c = caseNamed("tdx_v4_ok");
  const collateral = vectorCollateral(c.collateral_file);
  const realQuote: AttestationProvider = {
    name: "fixed-tdx", teeType: "TDX", simulated: false,
    measurement: async () => c.expect.mr_td!,
    attest: async () => ({ teeType: "TDX", quote: vectorBytes(c.quote_file), collateral }),
  };
  const cert = await createAttestedCertificate({ provider: realQuote });
  const info = readAttestedCertificate(cert.certDer);
  assert.equal(info.teeType, "TDX");
  assert.equal(Buffer.from(info.reportData).toString("hex"), c.expect.report_data);
  assert.deepEqual(info.collateral, collateral, "Intel's collateral survives the endorsement encoding byte for byte");
  assert.equal(info.keyBinding, false, "the recorded quote's report_data was made for other claims");
  assert.deepEqual(info.keyBindingErrors.map((e) => e.split(":")[0]), [
    `report_data begins ${c.expect.report_data.slice(0, 64)}, not SHA-256 of the claims ${sha256(info.claimsBuffer!)}`,
    "the last 32 bytes of report_data are not zero",
  ]);
  const result = await verifyEvidence(evidenceOf(info), { policy: { ...productionPolicy(), anyCode: true }, now: c.now_secs });
  assert.equal(result.ok, true, result.error);
  assert.equal(result.claims?.measurement, c.expect.mr_td);
});

const pki = await createSimPki({ seed: "42".repeat(32) });
const ours = await createAttestedCertificate({
  provider: new SimulatedProvider({ pki, mrEnclave: "a1".repeat(32) }),
  freshness: new Uint8Array(32).fill(3),
  signer: `0x${"ab".repeat(20)}`,
});
const OUR_OIDS = ["2.5.29.19", DICE_TAGGED_EVIDENCE_OID, DICE_ENDORSEMENT_MANIFEST_OID];

test("Cloister's certificate reads back: key binding, nonce, signer, carried collateral", () => {
  const info = readAttestedCertificate(ours.certDer);
  assert.equal(info.keyBinding, true);
  assert.deepEqual(info.nonce, new Uint8Array(32).fill(3));
  assert.equal(info.signer, `0x${"ab".repeat(20)}`);
  assert.ok(ours.evidence.teeType === "SGX");
  assert.deepEqual(info.collateral, ours.evidence.collateral);
});

test("every extension Cloister writes parses in @peculiar/x509", () => {
  const cert = new PeculiarCertificate(ours.certDer);
  assert.deepEqual([...cert.extensions].map((e) => e.type), OUR_OIDS);
});

test("every extension Cloister writes parses in OpenSSL (openssl x509 -text)", (t) => {
  if (spawnSync("openssl", ["version"]).error) {
    t.skip("openssl is not installed: the OpenSSL parse check did not run");
    return;
  }
  const text = execFileSync("openssl", ["x509", "-inform", "DER", "-text", "-noout"], { input: ours.certDer }).toString();
  for (const id of [DICE_TAGGED_EVIDENCE_OID, DICE_ENDORSEMENT_MANIFEST_OID]) assert.match(text, new RegExp(`${id.replace(/\./g, "\\.")}:`));
  assert.match(text, /CA:FALSE/);
});

test("every extension Cloister writes parses in Python cryptography", (t) => {
  if (spawnSync("python3", ["-c", "import cryptography"]).status !== 0) {
    t.skip("python3 with the cryptography package is not available: the Python parse check did not run");
    return;
  }
  const script = "import sys\nfrom cryptography import x509\nc = x509.load_der_x509_certificate(sys.stdin.buffer.read())\nprint(','.join(e.oid.dotted_string for e in c.extensions))";
  const out = execFileSync("python3", ["-c", script], { input: ours.certDer }).toString().trim();
  assert.deepEqual(out.split(","), OUR_OIDS);
});

test("mutated certificates give typed errors or a verdict, never anything else", () => {
  // Deterministic mutations (xorshift), bounded: single-byte changes anywhere, and truncations.
  let x = 0x9e3779b9;
  const next = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x >>> 0);
  for (const source of [ours.certDer, intel]) {
    for (let i = 0; i < 150; i++) {
      const mutated = Uint8Array.from(source);
      mutated[next() % mutated.length] = next() & 0xff;
      const input = i % 10 === 0 ? mutated.subarray(0, next() % mutated.length) : mutated;
      try {
        const info = readAttestedCertificate(input);
        assert.equal(typeof info.keyBinding, "boolean");
      } catch (e) {
        assert.ok(e instanceof AttestedTlsError, `mutation ${i}: ${String(e)}`);
      }
    }
  }
});
