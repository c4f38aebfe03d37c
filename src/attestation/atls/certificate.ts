/**
 * Attested TLS certificates in the RA-TLS style: a self-signed ECDSA P-256
 * certificate whose extensions carry TEE evidence, with
 *
 *   report_data = SHA-256("cloister/atls/v1" || SPKI DER of the certificate key) || freshness (32 bytes)
 *
 * so the evidence vouches for this very key (the TLS handshake proves the peer
 * holds it) and for a freshness value the relying party chose or accepts
 * (a nonce agreed out of band, a recent block hash). Without a freshness value
 * the last 32 bytes are zero and the certificate can be replayed by anyone
 * who also holds its private key: only the key binding remains.
 */
import { DOMAIN } from "../../protocol/domains.ts";
import { createHash, generateKeyPairSync, KeyObject, randomBytes, sign, X509Certificate, type webcrypto } from "node:crypto";
import { BitString, Boolean as AsnBoolean, Constructed, fromBER, GeneralizedTime, Integer, ObjectIdentifier, OctetString, Sequence, Set as AsnSet, UTCTime, Utf8String, type AsnType } from "asn1js";
import type { AttestationProvider, Claims, Evidence, VerificationResult } from "../types.ts";
import { AttestedTlsError } from "./errors.ts";
import { decodeTaggedEvidence, encodeCollateral, encodeTaggedEvidence, evidenceFrom, readAttestationExtensions, CLOISTER_COLLATERAL_OID, DICE_TAGGED_EVIDENCE_OID } from "./extensions.ts";

export const ATLS_DOMAIN = DOMAIN.atls;
export const FRESHNESS_LENGTH = 32;
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

export interface AttestedCertificate {
  certPem: string;
  keyPem: string;
  certDer: Uint8Array;
  evidence: Evidence;
}

export type KeyPairInput = { privateKey: KeyObject; publicKey: KeyObject } | webcrypto.CryptoKeyPair;

/** Checks a report_data against evidence; a policy-carrying verifier, injected so any policy works. */
export type EvidenceVerifier = (evidence: Evidence, expectedReportData: Uint8Array) => Promise<VerificationResult>;

/** The freshness the relying party expects: an exact value, or a test (e.g. "one of the last 10 block hashes"). */
export type FreshnessExpectation = Uint8Array | ((freshness: Uint8Array) => boolean | Promise<boolean>);

export interface AttestedPeer {
  claims: Claims;
  result: VerificationResult;
  evidence: Evidence;
  /** The freshness value bound in the evidence. */
  freshness: Uint8Array;
  /** SPKI DER of the peer's certificate key. */
  spki: Uint8Array;
}

const ZERO_FRESHNESS = new Uint8Array(FRESHNESS_LENGTH);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function checkFreshness(freshness: Uint8Array): Uint8Array {
  if (!(freshness instanceof Uint8Array) || freshness.length !== FRESHNESS_LENGTH) {
    throw new TypeError(`attested TLS freshness must be ${FRESHNESS_LENGTH} bytes (e.g. a nonce or a block hash)`);
  }
  return freshness;
}

export function atlsKeyHash(spki: Uint8Array): Uint8Array {
  return createHash("sha256").update(ATLS_DOMAIN).update(spki).digest();
}

/** report_data for a certificate key and a freshness value. */
export function atlsReportData(spki: Uint8Array, freshness: Uint8Array = ZERO_FRESHNESS): Uint8Array {
  return Buffer.concat([atlsKeyHash(spki), checkFreshness(freshness)]);
}

function toKeyObjects(keyPair: KeyPairInput | undefined): { privateKey: KeyObject; publicKey: KeyObject } {
  if (!keyPair) return generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const privateKey = keyPair.privateKey instanceof KeyObject ? keyPair.privateKey : KeyObject.from(keyPair.privateKey);
  const publicKey = keyPair.publicKey instanceof KeyObject ? keyPair.publicKey : KeyObject.from(keyPair.publicKey);
  if (publicKey.asymmetricKeyType !== "ec" || publicKey.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new TypeError("attested TLS keys must be ECDSA P-256");
  }
  return { privateKey, publicKey };
}

function extension(id: string, critical: boolean, value: Uint8Array | ArrayBuffer): Sequence {
  const parts: AsnType[] = [new ObjectIdentifier({ value: id })];
  if (critical) parts.push(new AsnBoolean({ value: true }));
  parts.push(new OctetString({ valueHex: value }));
  return new Sequence({ value: parts });
}

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050, whole seconds. */
function time(date: Date): UTCTime | GeneralizedTime {
  const valueDate = new Date(Math.floor(date.getTime() / 1000) * 1000);
  return date.getUTCFullYear() < 2050 ? new UTCTime({ valueDate }) : new GeneralizedTime({ valueDate });
}

const pem = (label: string, der: Uint8Array) =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString("base64").replace(/.{1,64}/g, "$&\n")}-----END ${label}-----\n`;

export async function createAttestedCertificate(options: {
  provider: AttestationProvider;
  keyPair?: KeyPairInput;
  freshness?: Uint8Array;
  /** Certificate lifetime; default one day. */
  validitySeconds?: number;
}): Promise<AttestedCertificate> {
  const { privateKey, publicKey } = toKeyObjects(options.keyPair);
  const freshness = checkFreshness(options.freshness ?? ZERO_FRESHNESS);
  const spki = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  const evidence = await options.provider.attest(atlsReportData(spki, freshness));
  const quote = evidence.teeType === "SEV-SNP" ? evidence.report : evidence.quote;

  const commonName = new Utf8String({ value: options.provider.simulated ? "cloister-atls SIMULATED" : "cloister-atls" });
  const name = new Sequence({ value: [new AsnSet({ value: [new Sequence({ value: [new ObjectIdentifier({ value: "2.5.4.3" }), commonName] })] })] });
  const now = Date.now();
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const sigAlg = () => new Sequence({ value: [new ObjectIdentifier({ value: ECDSA_WITH_SHA256 })] });
  const tbsBlock = new Sequence({
    value: [
      new Constructed({ idBlock: { tagClass: 3, tagNumber: 0 }, value: [new Integer({ value: 2 })] }),
      Integer.fromBigInt(BigInt(`0x${serial.toString("hex")}`)),
      sigAlg(),
      name,
      new Sequence({ value: [time(new Date(now - 60_000)), time(new Date(now + (options.validitySeconds ?? 86_400) * 1000))] }),
      name,
      fromBER(spki).result,
      new Constructed({
        idBlock: { tagClass: 3, tagNumber: 3 },
        value: [
          new Sequence({
            value: [
              extension("2.5.29.19", true, new Sequence().toBER()),
              extension(DICE_TAGGED_EVIDENCE_OID, false, encodeTaggedEvidence(quote, createHash("sha256").update(spki).digest(), freshness)),
              extension(CLOISTER_COLLATERAL_OID, false, encodeCollateral(evidence)),
            ],
          }),
        ],
      }),
    ],
  });
  const tbs = new Uint8Array(tbsBlock.toBER());
  const signature = new BitString({ valueHex: sign("sha256", tbs, privateKey) });
  const certDer = new Uint8Array(new Sequence({ value: [tbsBlock, sigAlg(), signature] }).toBER());
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return { certPem: pem("CERTIFICATE", certDer), keyPem, certDer, evidence };
}

function parseCertificate(certDer: Uint8Array, now: number): { spki: Uint8Array } {
  let cert: X509Certificate;
  try {
    // Given DER, node's X509Certificate first scans for PEM text and would
    // parse a certificate embedded in the collateral instead: hand it PEM.
    cert = new X509Certificate(pem("CERTIFICATE", certDer));
  } catch (e) {
    throw new AttestedTlsError("ATLS_CERT_INVALID", `attested TLS peer certificate is not valid X.509: ${(e as Error).message}`, { cause: e });
  }
  if (!Buffer.from(cert.raw).equals(Buffer.from(certDer))) {
    throw new AttestedTlsError("ATLS_CERT_INVALID", "attested TLS peer certificate has trailing or non-DER bytes");
  }
  if (cert.publicKey.asymmetricKeyType !== "ec") {
    throw new AttestedTlsError("ATLS_CERT_INVALID", "attested TLS peer certificate key is not an ECDSA key");
  }
  if (!cert.verify(cert.publicKey)) {
    throw new AttestedTlsError("ATLS_CERT_INVALID", "attested TLS peer certificate is not correctly self-signed");
  }
  if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) {
    throw new AttestedTlsError("ATLS_CERT_INVALID", `attested TLS peer certificate is outside its validity (${cert.validFrom} to ${cert.validTo}); the peer must issue a new one`);
  }
  return { spki: new Uint8Array(cert.publicKey.export({ type: "spki", format: "der" })) };
}

async function expectedFreshness(expectation: FreshnessExpectation | undefined, claimed: Uint8Array | undefined): Promise<Uint8Array> {
  if (expectation === undefined) return ZERO_FRESHNESS;
  if (expectation instanceof Uint8Array) return checkFreshness(expectation);
  if (!claimed || claimed.length !== FRESHNESS_LENGTH || !(await expectation(claimed))) {
    throw new AttestedTlsError(
      "ATLS_FRESHNESS_MISMATCH",
      `attested TLS peer evidence carries freshness ${claimed ? hex(claimed) : "(none)"}, which is not acceptable (stale or replayed); the peer must attest again with a current value`,
    );
  }
  return claimed;
}

/**
 * Extracts the evidence from an attested TLS certificate, binds it to the
 * certificate's own key and the expected freshness, and has `verify` judge it.
 * Throws AttestedTlsError saying why a peer is refused.
 */
export async function verifyAttestedCertificate(
  certDer: Uint8Array,
  options: { verify: EvidenceVerifier; freshness?: FreshnessExpectation; now?: number },
): Promise<AttestedPeer> {
  const { spki } = parseCertificate(certDer, options.now ?? Date.now());
  const ext = readAttestationExtensions(certDer);
  let tagged;
  if (ext.dice) tagged = decodeTaggedEvidence(ext.dice);
  else if (ext.legacy) tagged = { quote: ext.legacy };
  else {
    throw new AttestedTlsError(
      "ATLS_EVIDENCE_MISSING",
      `attested TLS peer certificate carries no evidence extension (neither TCG DICE ${DICE_TAGGED_EVIDENCE_OID} nor Gramine's legacy quote); it is an ordinary certificate, not an attested one`,
    );
  }
  if (tagged.pubkeyHash && hex(tagged.pubkeyHash) !== createHash("sha256").update(spki).digest("hex")) {
    throw new AttestedTlsError("ATLS_KEY_MISMATCH", "attested TLS peer evidence was made for another public key than the certificate's (its pubkey-hash claim differs): the evidence was copied from another certificate");
  }
  const evidence = evidenceFrom(tagged.quote, ext.collateral);
  const freshness = await expectedFreshness(options.freshness, tagged.nonce);
  const keyHash = atlsKeyHash(spki);
  const expected = Buffer.concat([keyHash, freshness]);

  const result = await options.verify(evidence, expected);
  if (result.claims) {
    const reportData = result.claims.reportData.toLowerCase();
    if (reportData.slice(0, 64) !== hex(keyHash)) {
      throw new AttestedTlsError("ATLS_KEY_MISMATCH", "attested TLS peer evidence binds another public key than the certificate's: the evidence was made for a different key (swapped or copied certificate)");
    }
    if (reportData.slice(64) !== hex(freshness)) {
      throw new AttestedTlsError(
        "ATLS_FRESHNESS_MISMATCH",
        `attested TLS peer evidence carries freshness ${reportData.slice(64)}, expected ${hex(freshness)}: the evidence is stale or replayed; the peer must attest with the current nonce`,
      );
    }
  }
  if (!result.ok || !result.claims) {
    throw new AttestedTlsError("ATLS_EVIDENCE_INVALID", `attested TLS peer evidence is not authentic: ${result.error ?? "the verifier returned no claims"}`);
  }
  if (!result.accepted) {
    throw new AttestedTlsError("ATLS_POLICY_REFUSED", `attested TLS peer refused by policy: ${result.reasons.join("; ") || "no reason given"}`, { reasons: result.reasons });
  }
  return { claims: result.claims, result, evidence, freshness, spki };
}
