/**
 * Intel's SGX extensions of a PCK certificate (OID 1.2.840.113741.1.13.1),
 * per "Intel SGX PCK Certificate and CRL Profile": PPID, TCB (16 components,
 * PCESVN, CPUSVN), PCE-ID, FMSPC, SGX type, and for Platform-CA certificates
 * the platform instance ID and configuration.
 */
import { AttestationError } from "./errors.ts";
import { TAG, children, decodeOid, decodeSmallInt, expectTag, parseDer, type DerNode } from "./der.ts";
import type { Cert } from "./cert.ts";

export const SGX_EXTENSIONS_OID = "1.2.840.113741.1.13.1";

export interface PckExtensions {
  ppid: Uint8Array;
  /** The 16 SGX TCB component SVNs. */
  tcbComponents: number[];
  pceSvn: number;
  cpuSvn: Uint8Array;
  pceId: Uint8Array;
  fmspc: Uint8Array;
  /** 0 = Standard, 1 = Scalable, 2 = Scalable with integrity. */
  sgxType: number;
  platformInstanceId?: Uint8Array;
  configuration?: { dynamicPlatform?: boolean; cachedKeys?: boolean; smtEnabled?: boolean };
}

const CODE = "CERT_MALFORMED";

function octets(node: DerNode | undefined, len: number, what: string): Uint8Array {
  const v = expectTag(node, TAG.OCTET_STRING, CODE, what).value;
  if (v.length !== len) throw new AttestationError(CODE, `${what} must be ${len} bytes, found ${v.length}`);
  return v;
}

/** Splits SEQUENCE { SEQUENCE { OID, value } ... } into a map by OID. */
function oidMap(node: DerNode, what: string): Map<string, DerNode> {
  const out = new Map<string, DerNode>();
  for (const entry of children(expectTag(node, TAG.SEQUENCE, CODE, what), CODE, what)) {
    const [oid, value] = children(expectTag(entry, TAG.SEQUENCE, CODE, what), CODE, what);
    const id = decodeOid(expectTag(oid, TAG.OID, CODE, what).value);
    if (!value) throw new AttestationError(CODE, `${what}: ${id} has no value`);
    if (out.has(id)) throw new AttestationError(CODE, `${what}: ${id} appears twice`);
    out.set(id, value);
  }
  return out;
}

function booleanOf(node: DerNode | undefined): boolean | undefined {
  return node && node.tag === TAG.BOOLEAN ? node.value[0] !== 0 : undefined;
}

export function parsePckExtensions(cert: Cert): PckExtensions {
  const raw = cert.extensions.get(SGX_EXTENSIONS_OID);
  if (!raw) throw new AttestationError(CODE, `PCK certificate "${cert.subjectCN}" has no SGX extensions (${SGX_EXTENSIONS_OID})`);
  const what = "PCK certificate SGX extensions";
  const top = oidMap(parseDer(raw, CODE, what), what);
  const p = SGX_EXTENSIONS_OID;
  const tcbNode = top.get(`${p}.2`);
  if (!tcbNode) throw new AttestationError(CODE, `${what}: TCB (${p}.2) missing`);
  const tcb = oidMap(tcbNode, `${what} TCB`);
  const tcbComponents: number[] = [];
  for (let i = 1; i <= 16; i++) {
    const c = tcb.get(`${p}.2.${i}`);
    if (!c) throw new AttestationError(CODE, `${what}: TCB component ${i} missing`);
    tcbComponents.push(decodeSmallInt(expectTag(c, TAG.INTEGER, CODE, what), CODE, `${what} component ${i}`));
  }
  const pceSvnNode = expectTag(tcb.get(`${p}.2.17`), TAG.INTEGER, CODE, `${what} PCESVN`);
  const sgxTypeNode = expectTag(top.get(`${p}.5`), TAG.ENUMERATED, CODE, `${what} SGX type`);
  const out: PckExtensions = {
    ppid: octets(top.get(`${p}.1`), 16, `${what} PPID`),
    tcbComponents,
    pceSvn: decodeSmallInt(pceSvnNode, CODE, `${what} PCESVN`),
    cpuSvn: octets(tcb.get(`${p}.2.18`), 16, `${what} CPUSVN`),
    pceId: octets(top.get(`${p}.3`), 2, `${what} PCE-ID`),
    fmspc: octets(top.get(`${p}.4`), 6, `${what} FMSPC`),
    sgxType: decodeSmallInt(sgxTypeNode, CODE, `${what} SGX type`),
  };
  const instance = top.get(`${p}.6`);
  if (instance) out.platformInstanceId = octets(instance, 16, `${what} platform instance ID`);
  const config = top.get(`${p}.7`);
  if (config) {
    const c = oidMap(config, `${what} configuration`);
    out.configuration = {
      dynamicPlatform: booleanOf(c.get(`${p}.7.1`)),
      cachedKeys: booleanOf(c.get(`${p}.7.2`)),
      smtEnabled: booleanOf(c.get(`${p}.7.3`)),
    };
  }
  return out;
}
