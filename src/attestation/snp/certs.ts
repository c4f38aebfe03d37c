/**
 * The parts of AMD's X.509 certificates (ARK, ASK, VCEK) that the SEV-SNP
 * checks need, read with the bounds-checked DER reader, and the RSA-PSS
 * signature check AMD uses (SHA-384, MGF1-SHA-384, 48-byte salt). The
 * signature is checked over the exact TBS bytes with node:crypto, so no
 * library's PSS parameter handling is relied on.
 */
import { createHash, createPublicKey, verify as cryptoVerify, constants, type KeyObject } from "node:crypto";
import { AttestationError } from "../dcap/errors.ts";
import { children, decodeOid, decodeSmallInt, decodeTime, expectTag, parseDer, readNode, TAG, type DerNode } from "../dcap/der.ts";

const RSASSA_PSS = "1.2.840.113549.1.1.10";
const SHA384 = "2.16.840.1.101.3.4.2.2";
const MGF1 = "1.2.840.113549.1.1.8";
const COMMON_NAME = "2.5.4.3";
const PSS_SALT_LENGTH = 48;

export interface SnpCertificate {
  /** Which certificate this is, for messages ("VCEK", "ASK", "ARK"). */
  role: string;
  der: Uint8Array;
  tbs: Uint8Array;
  signatureAlgorithm: DerNode;
  signature: Uint8Array;
  issuerRaw: Uint8Array;
  subjectRaw: Uint8Array;
  subjectCn: string;
  notBefore: number;
  notAfter: number;
  publicKey: KeyObject;
  /** Extension values (the OCTET STRING content), by OID. */
  extensions: Map<string, Uint8Array>;
  sha256: string;
}

const malformed = (role: string, detail: string) =>
  new AttestationError("CERT_MALFORMED", `SEV-SNP ${role} certificate is malformed: ${detail}`);

function commonName(name: DerNode, role: string): string {
  for (const rdn of children(name, "CERT_MALFORMED", role)) {
    for (const atv of children(rdn, "CERT_MALFORMED", role)) {
      const [type, value] = children(atv, "CERT_MALFORMED", role);
      if (type?.tag === TAG.OID && decodeOid(type.value) === COMMON_NAME && value) {
        return Buffer.from(value.value).toString("utf8");
      }
    }
  }
  return "";
}

export function parseSnpCertificate(der: Uint8Array, role: string): SnpCertificate {
  try {
    const cert = expectTag(parseDer(der, "CERT_MALFORMED", role), TAG.SEQUENCE, "CERT_MALFORMED", role);
    const [tbsNode, sigAlg, sigValue] = children(cert, "CERT_MALFORMED", role);
    const tbs = expectTag(tbsNode, TAG.SEQUENCE, "CERT_MALFORMED", role);
    const sigBits = expectTag(sigValue, TAG.BIT_STRING, "CERT_MALFORMED", role);
    if (sigBits.value[0] !== 0) throw malformed(role, "signature BIT STRING has unused bits");

    const fields = children(tbs, "CERT_MALFORMED", role);
    const start = fields[0]?.tag === 0xa0 ? 1 : 0;
    const issuer = expectTag(fields[start + 2], TAG.SEQUENCE, "CERT_MALFORMED", role);
    const validity = children(expectTag(fields[start + 3], TAG.SEQUENCE, "CERT_MALFORMED", role), "CERT_MALFORMED", role);
    const subject = expectTag(fields[start + 4], TAG.SEQUENCE, "CERT_MALFORMED", role);
    const spki = expectTag(fields[start + 5], TAG.SEQUENCE, "CERT_MALFORMED", role);
    if (!validity[0] || !validity[1]) throw malformed(role, "validity is incomplete");

    const extensions = new Map<string, Uint8Array>();
    const extWrapper = fields.slice(start + 6).find((f) => f.tag === 0xa3);
    if (extWrapper) {
      const list = expectTag(children(extWrapper, "CERT_MALFORMED", role)[0], TAG.SEQUENCE, "CERT_MALFORMED", role);
      for (const ext of children(list, "CERT_MALFORMED", role)) {
        const parts = children(ext, "CERT_MALFORMED", role);
        const oid = decodeOid(expectTag(parts[0], TAG.OID, "CERT_MALFORMED", role).value);
        const value = expectTag(parts[parts.length - 1], TAG.OCTET_STRING, "CERT_MALFORMED", role);
        if (extensions.has(oid)) throw malformed(role, `extension ${oid} appears twice`);
        extensions.set(oid, value.value);
      }
    }

    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: Buffer.from(spki.raw), format: "der", type: "spki" });
    } catch (e) {
      throw malformed(role, `unusable public key (${(e as Error).message})`);
    }
    return {
      role,
      der,
      tbs: tbs.raw,
      signatureAlgorithm: expectTag(sigAlg, TAG.SEQUENCE, "CERT_MALFORMED", role),
      signature: sigBits.value.subarray(1),
      issuerRaw: issuer.raw,
      subjectRaw: subject.raw,
      subjectCn: commonName(subject, role),
      notBefore: decodeTime(validity[0], "CERT_MALFORMED", role),
      notAfter: decodeTime(validity[1], "CERT_MALFORMED", role),
      publicKey,
      extensions,
      sha256: createHash("sha256").update(der).digest("hex"),
    };
  } catch (e) {
    if (e instanceof AttestationError) throw e;
    throw malformed(role, (e as Error).message);
  }
}

/** Splits a PEM bundle into DER certificates, in order. */
export function pemCertificates(pem: string): Uint8Array[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new Uint8Array(Buffer.from(b.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, ""), "base64")));
}

/** Refuses anything but RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt. */
function checkPssParameters(cert: SnpCertificate): void {
  const role = cert.role;
  const [oid, params] = children(cert.signatureAlgorithm, "CERT_MALFORMED", role);
  const algorithm = oid?.tag === TAG.OID ? decodeOid(oid.value) : "";
  if (algorithm !== RSASSA_PSS || !params) {
    throw new AttestationError("CERT_CHAIN_INVALID", `SEV-SNP ${role} certificate is not signed with RSASSA-PSS (found ${algorithm || "none"}); AMD signs VCEK, ASK and ARK with RSA-PSS`);
  }
  let hash = "";
  let mgfHash = "";
  let salt = 20; // the ASN.1 default
  for (const field of children(params, "CERT_MALFORMED", role)) {
    const inner = readNode(field.value, 0, "CERT_MALFORMED", role);
    if (field.tag === 0xa0) hash = decodeOid(children(inner, "CERT_MALFORMED", role)[0]?.value ?? new Uint8Array());
    if (field.tag === 0xa1) {
      const [mgf, mgfParams] = children(inner, "CERT_MALFORMED", role);
      if (!mgf || decodeOid(mgf.value) !== MGF1 || !mgfParams) throw malformed(role, "PSS mask generation is not MGF1");
      mgfHash = decodeOid(children(mgfParams, "CERT_MALFORMED", role)[0]?.value ?? new Uint8Array());
    }
    if (field.tag === 0xa2) salt = decodeSmallInt(inner, "CERT_MALFORMED", role);
  }
  if (hash !== SHA384 || mgfHash !== SHA384 || salt !== PSS_SALT_LENGTH) {
    throw new AttestationError(
      "CERT_CHAIN_INVALID",
      `SEV-SNP ${role} certificate uses RSA-PSS parameters hash=${hash || "SHA-1"}, mgf1=${mgfHash || "SHA-1"}, salt=${salt}; expected SHA-384, MGF1-SHA-384, salt 48`,
    );
  }
}

/** Checks that `issuer` signed `cert` (RSA-PSS SHA-384, salt 48) and that the names chain. */
export function checkIssuedBy(cert: SnpCertificate, issuer: SnpCertificate): void {
  if (Buffer.compare(Buffer.from(cert.issuerRaw), Buffer.from(issuer.subjectRaw)) !== 0) {
    throw new AttestationError(
      "CERT_CHAIN_INVALID",
      `SEV-SNP ${cert.role} certificate (CN=${cert.subjectCn}) is not issued by the ${issuer.role} given (CN=${issuer.subjectCn}). The chain must be VCEK, then ASK, then ARK.`,
    );
  }
  checkPssParameters(cert);
  const ok = cryptoVerify(
    "sha384",
    cert.tbs,
    { key: issuer.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_LENGTH },
    cert.signature,
  );
  if (!ok) {
    throw new AttestationError("CERT_CHAIN_INVALID", `SEV-SNP ${cert.role} certificate signature does not verify with the ${issuer.role} public key`);
  }
}

export function checkValidity(cert: SnpCertificate, now: number): void {
  if (now < cert.notBefore) {
    throw new AttestationError("CERT_NOT_YET_VALID", `SEV-SNP ${cert.role} certificate is not valid before ${new Date(cert.notBefore * 1000).toISOString()} (evaluation time ${new Date(now * 1000).toISOString()})`);
  }
  if (now > cert.notAfter) {
    throw new AttestationError("CERT_EXPIRED", `SEV-SNP ${cert.role} certificate expired at ${new Date(cert.notAfter * 1000).toISOString()} (evaluation time ${new Date(now * 1000).toISOString()}); fetch a current one from AMD KDS`);
  }
}
