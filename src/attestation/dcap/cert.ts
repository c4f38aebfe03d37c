/**
 * X.509 certificates and chains for DCAP. Signatures and keys go through
 * node:crypto; names, serials and extensions are read with our DER reader so
 * that issuer matching compares the exact encoded names, as RFC 5280 expects.
 */
import { X509Certificate } from "node:crypto";
import { AttestationError } from "./errors.ts";
import { TAG, children, decodeOid, decodeTime, expectTag, parseDer } from "./der.ts";
import { bytesEqual, hex } from "./bytes.ts";

export interface Cert {
  der: Uint8Array;
  x509: X509Certificate;
  /** Serial number as lowercase hex without leading zero bytes. */
  serial: string;
  issuerRaw: Uint8Array;
  subjectRaw: Uint8Array;
  notBefore: number;
  notAfter: number;
  /** Extension values (the OCTET STRING contents) by OID. */
  extensions: Map<string, Uint8Array>;
  subjectCN: string;
  issuerCN: string;
}

export function canonicalSerial(value: Uint8Array): string {
  let i = 0;
  while (i < value.length - 1 && value[i] === 0) i++;
  return hex(value.subarray(i));
}

function commonName(dn: string): string {
  const m = dn.match(/(?:^|\n)CN=([^\n]*)/);
  return m ? m[1]! : "";
}

export function parseCert(der: Uint8Array, what: string): Cert {
  const code = "CERT_MALFORMED";
  const root = expectTag(parseDer(der, code, what), TAG.SEQUENCE, code, what);
  const tbs = expectTag(children(root, code, what)[0], TAG.SEQUENCE, code, what);
  const f = children(tbs, code, what);
  let i = f[0]?.tag === 0xa0 ? 1 : 0;
  const serial = expectTag(f[i++], TAG.INTEGER, code, what);
  expectTag(f[i++], TAG.SEQUENCE, code, what);
  const issuer = expectTag(f[i++], TAG.SEQUENCE, code, what);
  const validity = children(expectTag(f[i++], TAG.SEQUENCE, code, what), code, what);
  const subject = expectTag(f[i++], TAG.SEQUENCE, code, what);
  expectTag(f[i++], TAG.SEQUENCE, code, what);
  if (!validity[0] || !validity[1]) throw new AttestationError(code, `${what}: validity is incomplete`);
  const extensions = new Map<string, Uint8Array>();
  for (const node of f.slice(i)) {
    if (node.tag !== 0xa3) continue;
    const list = expectTag(children(node, code, what)[0], TAG.SEQUENCE, code, what);
    for (const ext of children(list, code, what)) {
      const parts = children(expectTag(ext, TAG.SEQUENCE, code, what), code, what);
      const oid = decodeOid(expectTag(parts[0], TAG.OID, code, what).value);
      const value = expectTag(parts[parts.length - 1], TAG.OCTET_STRING, code, what);
      extensions.set(oid, value.value);
    }
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
  } catch (e) {
    throw new AttestationError(code, `${what}: not a certificate node:crypto can read (${(e as Error).message})`);
  }
  return {
    der,
    x509,
    serial: canonicalSerial(serial.value),
    issuerRaw: issuer.raw,
    subjectRaw: subject.raw,
    notBefore: decodeTime(validity[0], code, what),
    notAfter: decodeTime(validity[1], code, what),
    extensions,
    subjectCN: commonName(x509.subject),
    issuerCN: commonName(x509.issuer),
  };
}

/** Splits a PEM bundle into certificates, in order. */
export function parsePemChain(pem: string, what: string): Cert[] {
  if (typeof pem !== "string") throw new AttestationError("CERT_MALFORMED", `${what} must be a PEM string`);
  const blocks = [...pem.matchAll(/-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----/g)];
  if (blocks.length === 0) throw new AttestationError("CERT_MALFORMED", `${what} holds no PEM certificate`);
  return blocks.map((b, n) => {
    const body = b[1]!.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new AttestationError("CERT_MALFORMED", `${what}: certificate ${n} is not valid base64`);
    return parseCert(new Uint8Array(Buffer.from(body, "base64")), `${what} certificate ${n} `);
  });
}

export function isSelfIssued(c: Cert): boolean {
  return bytesEqual(c.issuerRaw, c.subjectRaw);
}

/** Checks that `child` names `parent` as issuer, is signed by it, and that `parent` is a CA. */
export function checkIssuedBy(child: Cert, parent: Cert, what: string): void {
  if (!bytesEqual(child.issuerRaw, parent.subjectRaw)) {
    throw new AttestationError("CERT_CHAIN_INVALID", `${what}: "${child.subjectCN}" names issuer "${child.issuerCN}", not "${parent.subjectCN}"`);
  }
  if (!parent.x509.ca) throw new AttestationError("CERT_CHAIN_INVALID", `${what}: issuer "${parent.subjectCN}" is not a CA certificate`);
  let valid = false;
  try {
    valid = child.x509.verify(parent.x509.publicKey);
  } catch {
    valid = false;
  }
  if (!valid) throw new AttestationError("CERT_CHAIN_INVALID", `${what}: signature of "${child.subjectCN}" does not verify with the key of "${parent.subjectCN}"`);
}

export function checkValidity(c: Cert, now: number, what: string): void {
  if (now < c.notBefore) {
    throw new AttestationError("CERT_NOT_YET_VALID", `${what}: "${c.subjectCN}" is not valid before ${new Date(c.notBefore * 1000).toISOString()}`);
  }
  if (now > c.notAfter) {
    throw new AttestationError("CERT_EXPIRED", `${what}: "${c.subjectCN}" expired at ${new Date(c.notAfter * 1000).toISOString()}`);
  }
}

export interface TrustAnchor {
  cert: Cert;
  simulated: boolean;
}

/**
 * Verifies a leaf-first chain up to one of the anchors at time `now` and
 * returns that anchor. A self-signed top certificate must be byte-identical
 * to an anchor; otherwise the top certificate must be issued by an anchor.
 */
export function verifyChain(chain: Cert[], anchors: TrustAnchor[], now: number, what: string): { anchor: TrustAnchor; path: Cert[] } {
  if (chain.length === 0) throw new AttestationError("CERT_CHAIN_INVALID", `${what} is empty`);
  if (chain.length > 8) throw new AttestationError("CERT_CHAIN_INVALID", `${what} is too long (${chain.length} certificates)`);
  const top = chain[chain.length - 1]!;
  let anchor: TrustAnchor | undefined;
  let path: Cert[];
  if (isSelfIssued(top) && chain.length > 1) {
    anchor = anchors.find((a) => bytesEqual(a.cert.der, top.der));
    if (!anchor) throw new AttestationError("UNTRUSTED_ROOT", `${what}: root "${top.subjectCN}" is not a trusted root`);
    path = chain.slice(0, -1);
  } else {
    anchor = anchors.find((a) => bytesEqual(a.cert.subjectRaw, top.issuerRaw));
    if (!anchor) throw new AttestationError("UNTRUSTED_ROOT", `${what}: issuer "${top.issuerCN}" is not a trusted root`);
    path = chain;
  }
  const full = [...path, anchor.cert];
  for (let i = 0; i < path.length; i++) checkIssuedBy(full[i]!, full[i + 1]!, what);
  for (const c of full) checkValidity(c, now, what);
  return { anchor, path };
}

