/**
 * X.509 CRLs (RFC 5280 §5): parsed with our DER reader, signature checked
 * with node:crypto against the certificate of the CA that must have issued it.
 */
import { verify as cryptoVerify } from "node:crypto";
import { AttestationError } from "./errors.ts";
import { TAG, children, decodeOid, decodeTime, expectTag, parseDer } from "./der.ts";
import { bytesEqual } from "./bytes.ts";
import { canonicalSerial, type Cert } from "./cert.ts";

export interface Crl {
  der: Uint8Array;
  tbs: Uint8Array;
  signatureAlgorithm: string;
  signature: Uint8Array;
  issuerRaw: Uint8Array;
  thisUpdate: number;
  nextUpdate?: number;
  revoked: Set<string>;
}

const HASH_BY_SIG_OID: Record<string, string> = {
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
};

export function parseCrl(der: Uint8Array, what: string): Crl {
  const code = "CRL_INVALID";
  const root = children(expectTag(parseDer(der, code, what), TAG.SEQUENCE, code, what), code, what);
  const tbsNode = expectTag(root[0], TAG.SEQUENCE, code, what);
  const outerAlg = children(expectTag(root[1], TAG.SEQUENCE, code, what), code, what);
  const sigBits = expectTag(root[2], TAG.BIT_STRING, code, what).value;
  if (sigBits.length < 2 || sigBits[0] !== 0) throw new AttestationError(code, `${what}: malformed signature bit string`);
  const f = children(tbsNode, code, what);
  let i = f[0]?.tag === TAG.INTEGER ? 1 : 0;
  const innerAlg = expectTag(f[i++], TAG.SEQUENCE, code, what);
  const issuer = expectTag(f[i++], TAG.SEQUENCE, code, what);
  const thisUpdateNode = f[i++];
  if (!thisUpdateNode) throw new AttestationError(code, `${what}: thisUpdate missing`);
  const thisUpdate = decodeTime(thisUpdateNode, code, what);
  let nextUpdate: number | undefined;
  if (f[i] && (f[i]!.tag === TAG.UTC_TIME || f[i]!.tag === TAG.GENERALIZED_TIME)) nextUpdate = decodeTime(f[i++]!, code, what);
  const revoked = new Set<string>();
  if (f[i]?.tag === TAG.SEQUENCE) {
    for (const entry of children(f[i++]!, code, what)) {
      const serial = expectTag(children(expectTag(entry, TAG.SEQUENCE, code, what), code, what)[0], TAG.INTEGER, code, what);
      revoked.add(canonicalSerial(serial.value));
    }
  }
  const algOid = decodeOid(expectTag(outerAlg[0], TAG.OID, code, what).value);
  if (!bytesEqual(innerAlg.raw, root[1]!.raw)) throw new AttestationError(code, `${what}: inner and outer signature algorithms differ`);
  return { der, tbs: tbsNode.raw, signatureAlgorithm: algOid, signature: sigBits.subarray(1), issuerRaw: issuer.raw, thisUpdate, nextUpdate, revoked };
}

/** Checks the CRL's issuer name, its signature by `issuer`, and that `now` lies in thisUpdate..nextUpdate. */
export function checkCrl(crl: Crl, issuer: Cert, now: number, what: string): void {
  if (!bytesEqual(crl.issuerRaw, issuer.subjectRaw)) {
    throw new AttestationError("CRL_INVALID", `${what} was not issued by "${issuer.subjectCN}" (the CA it must cover); supply that CA's CRL`);
  }
  const hash = HASH_BY_SIG_OID[crl.signatureAlgorithm];
  if (!hash) throw new AttestationError("CRL_INVALID", `${what} uses unsupported signature algorithm ${crl.signatureAlgorithm}`);
  let valid = false;
  try {
    valid = cryptoVerify(hash, crl.tbs, issuer.x509.publicKey, crl.signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new AttestationError("CRL_INVALID", `${what}: signature does not verify with the key of "${issuer.subjectCN}"`);
  if (now < crl.thisUpdate) {
    throw new AttestationError("CRL_NOT_YET_VALID", `${what} is not valid before ${new Date(crl.thisUpdate * 1000).toISOString()}`);
  }
  if (crl.nextUpdate === undefined) throw new AttestationError("CRL_INVALID", `${what} has no nextUpdate`);
  if (now > crl.nextUpdate) {
    throw new AttestationError("CRL_EXPIRED", `${what} expired at ${new Date(crl.nextUpdate * 1000).toISOString()}; fetch fresh collateral`);
  }
}

export function checkNotRevoked(cert: Cert, crl: Crl, what: string): void {
  if (crl.revoked.has(cert.serial)) {
    throw new AttestationError("CERT_REVOKED", `${what}: "${cert.subjectCN}" (serial ${cert.serial}) is revoked by its CA's CRL`);
  }
}
