/**
 * Attested TLS certificates in the interoperable RA-TLS format (see
 * extensions.ts): a self-signed ECDSA P-256 certificate whose TCG DICE
 * tagged-evidence extension holds the quote and a claims buffer with
 * pubkey-hash = [1, SHA-256(SPKI DER)], an optional nonce (the freshness the
 * relying party chose or accepts: a nonce agreed out of band, a recent block
 * hash) and Cloister's own claims, and
 *
 *   report_data = SHA-256(claims buffer) || 32 zero bytes
 *
 * so the evidence vouches for this very key (the TLS handshake proves the peer
 * holds it) and for the nonce. The collateral rides in the TCG DICE
 * endorsement-manifest extension. Without a nonce the certificate can be
 * replayed by anyone who also holds its private key: only the key binding remains.
 */
import { createHash, generateKeyPairSync, KeyObject, randomBytes, sign, type webcrypto } from "node:crypto";
import { BitString, Boolean as AsnBoolean, Constructed, fromBER, GeneralizedTime, Integer, ObjectIdentifier, OctetString, Sequence, Set as AsnSet, UTCTime, Utf8String, type AsnType } from "asn1js";
import type { AttestationProvider, Claims, Evidence, VerificationResult } from "../types.ts";
import { AttestedTlsError } from "./errors.ts";
import { CLOISTER_SIGNER_CLAIM, DICE_ENDORSEMENT_MANIFEST_OID, DICE_TAGGED_EVIDENCE_OID, encodeClaims, encodeEndorsements, encodeTaggedEvidence } from "./extensions.ts";
import { evidenceOf, parseX509, readAttestedCertificate, type AttestedCertificateInfo } from "./reader.ts";

export const FRESHNESS_LENGTH = 32;
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

export interface AttestedCertificate {
  certPem: string;
  keyPem: string;
  certDer: Uint8Array;
  evidence: Evidence;
  /** The claims buffer whose SHA-256 is the first half of the evidence's report_data. */
  claimsBuffer: Uint8Array;
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
  /** The freshness value bound in the evidence (its nonce claim); 32 zero bytes when it binds none. */
  freshness: Uint8Array;
  /** SPKI DER of the peer's certificate key. */
  spki: Uint8Array;
  /** Everything read from the peer's certificate: its claims (Cloister's under `cloisterClaims`, the signer address), format, key binding. */
  certificate: AttestedCertificateInfo;
}

const ZERO_FRESHNESS = new Uint8Array(FRESHNESS_LENGTH);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function checkFreshness(freshness: Uint8Array): Uint8Array {
  if (!(freshness instanceof Uint8Array) || freshness.length !== FRESHNESS_LENGTH) {
    throw new TypeError(`attested TLS freshness must be ${FRESHNESS_LENGTH} bytes (e.g. a nonce or a block hash)`);
  }
  return freshness;
}

/** report_data for a claims buffer: its SHA-256, then 32 zero bytes. */
export function claimsReportData(claimsBuffer: Uint8Array): Uint8Array {
  return Buffer.concat([createHash("sha256").update(claimsBuffer).digest(), new Uint8Array(32)]);
}

/** The claims buffer a certificate for this key carries. */
export function attestedClaims(spki: Uint8Array, options: { freshness?: Uint8Array; signer?: string; claims?: Readonly<Record<string, Uint8Array>> } = {}): Uint8Array {
  const claims: Record<string, Uint8Array> = { ...options.claims };
  if (options.signer !== undefined) {
    if (!/^0x[0-9a-fA-F]{40}$/.test(options.signer)) throw new TypeError(`attested TLS signer must be a 0x-prefixed 20-byte address, got '${options.signer}'`);
    claims[CLOISTER_SIGNER_CLAIM] = new Uint8Array(Buffer.from(options.signer.slice(2), "hex"));
  }
  return encodeClaims(createHash("sha256").update(spki).digest(), {
    ...(options.freshness ? { nonce: checkFreshness(options.freshness) } : {}),
    claims,
  });
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
  /** 32 bytes, carried as the nonce claim. */
  freshness?: Uint8Array;
  /** Certificate lifetime; default one day. */
  validitySeconds?: number;
  /** The enclave's signer address (0x…), carried as the cloister-signer claim. */
  signer?: string;
  /** Further Cloister claims; names must start with "cloister-". */
  claims?: Readonly<Record<string, Uint8Array>>;
  /** Carry the evidence's collateral in the endorsement extension (default true). */
  includeCollateral?: boolean;
}): Promise<AttestedCertificate> {
  const { privateKey, publicKey } = toKeyObjects(options.keyPair);
  const spki = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  const claimsBuffer = attestedClaims(spki, {
    ...(options.freshness ? { freshness: options.freshness } : {}),
    ...(options.signer !== undefined ? { signer: options.signer } : {}),
    ...(options.claims ? { claims: options.claims } : {}),
  });
  const evidence = await options.provider.attest(claimsReportData(claimsBuffer));
  const quote = evidence.teeType === "SEV-SNP" ? evidence.report : evidence.quote;
  const collateral = options.includeCollateral === false ? undefined : evidence.collateral;

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
              extension(DICE_TAGGED_EVIDENCE_OID, false, encodeTaggedEvidence(quote, claimsBuffer)),
              ...(collateral ? [extension(DICE_ENDORSEMENT_MANIFEST_OID, false, encodeEndorsements(collateral))] : []),
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
  return { certPem: pem("CERTIFICATE", certDer), keyPem, certDer, evidence, claimsBuffer };
}

function checkPeerCertificate(certDer: Uint8Array, now: number): void {
  const cert = parseX509(certDer);
  if (cert.publicKey.asymmetricKeyType !== "ec") {
    throw new AttestedTlsError("ATLS_CERT_INVALID", "attested TLS peer certificate key is not an ECDSA key");
  }
  if (!cert.verify(cert.publicKey)) {
    throw new AttestedTlsError("ATLS_CERT_INVALID", "attested TLS peer certificate is not correctly self-signed");
  }
  if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) {
    throw new AttestedTlsError("ATLS_CERT_INVALID", `attested TLS peer certificate is outside its validity (${cert.validFrom} to ${cert.validTo}); the peer must issue a new one`);
  }
}

async function checkNonce(expectation: FreshnessExpectation | undefined, nonce: Uint8Array | undefined): Promise<void> {
  if (expectation === undefined) return;
  const acceptable = expectation instanceof Uint8Array
    ? nonce !== undefined && hex(nonce) === hex(checkFreshness(expectation))
    : nonce !== undefined && nonce.length === FRESHNESS_LENGTH && (await expectation(nonce));
  if (!acceptable) {
    throw new AttestedTlsError(
      "ATLS_FRESHNESS_MISMATCH",
      `attested TLS peer evidence carries nonce ${nonce ? hex(nonce) : "(none)"}${expectation instanceof Uint8Array ? `, expected ${hex(expectation)}` : ", which is not acceptable"}: the evidence is stale or replayed; the peer must attest again with a current value`,
    );
  }
}

/** The report_data a certificate's evidence must carry for its key binding. */
function expectedReportData(info: AttestedCertificateInfo): Uint8Array {
  if (info.claimsBuffer) return claimsReportData(info.claimsBuffer);
  return Buffer.concat([createHash("sha256").update(info.spki).digest(), new Uint8Array(32)]);
}

/**
 * Extracts the evidence from an attested TLS certificate, checks that it binds
 * the certificate's own key and the expected freshness, and has `verify` judge
 * it. Throws AttestedTlsError saying why a peer is refused.
 */
export async function verifyAttestedCertificate(
  certDer: Uint8Array,
  options: { verify: EvidenceVerifier; freshness?: FreshnessExpectation; now?: number },
): Promise<AttestedPeer> {
  checkPeerCertificate(certDer, options.now ?? Date.now());
  const info = readAttestedCertificate(certDer);
  if (!info.keyBinding) {
    throw new AttestedTlsError("ATLS_KEY_MISMATCH", `attested TLS peer evidence does not bind the certificate's key: ${info.keyBindingErrors.join("; ")}`, {
      details: { errors: info.keyBindingErrors },
    });
  }
  await checkNonce(options.freshness, info.nonce);
  const evidence = evidenceOf(info);
  const expected = expectedReportData(info);

  const result = await options.verify(evidence, expected);
  if (result.claims && result.claims.reportData.toLowerCase() !== hex(expected)) {
    throw new AttestedTlsError("ATLS_KEY_MISMATCH", "attested TLS peer evidence, as the verifier read it, carries another report_data than the certificate's claims bind: the evidence was made for a different key (swapped or copied certificate)");
  }
  if (!result.ok || !result.claims) {
    throw new AttestedTlsError("ATLS_EVIDENCE_INVALID", `attested TLS peer evidence is not authentic: ${result.error ?? "the verifier returned no claims"}`);
  }
  if (!result.accepted) {
    throw new AttestedTlsError("ATLS_POLICY_REFUSED", `attested TLS peer refused by policy: ${result.reasons.join("; ") || "no reason given"}`, { reasons: result.reasons });
  }
  return { claims: result.claims, result, evidence, freshness: info.nonce ?? ZERO_FRESHNESS, spki: info.spki, certificate: info };
}
