/**
 * The Intel SGX PCK certificate extension (OID 1.2.840.113741.1.13.1), encoded
 * the way Intel's PCK certificates encode it: a SEQUENCE of (OID, value) pairs,
 * the TCB entry itself a SEQUENCE of 16 component SVNs, PCESVN and CPUSVN.
 */
import { Enumerated, Integer, ObjectIdentifier, OctetString, Sequence, type AsnType } from "asn1js";

export const SGX_EXTENSION_OID = "1.2.840.113741.1.13.1";

/** What the PCK certificate says about the platform. */
export interface SgxPckExtension {
  /** Platform Provisioning ID, 16 bytes. */
  ppid: Uint8Array;
  /** The 16 SGX TCB component SVNs (each 0..255); also the CPUSVN bytes. */
  tcbComponents: number[];
  pceSvn: number;
  /** PCE ID, 2 bytes. */
  pceId: Uint8Array;
  /** Family-Model-Stepping-Platform-CustomSKU, 6 bytes. */
  fmspc: Uint8Array;
  /** 0 = Standard (the only type on Processor-CA platforms). */
  sgxType: number;
}

function entry(oid: string, value: AsnType): Sequence {
  return new Sequence({ value: [new ObjectIdentifier({ value: oid }), value] });
}

const octets = (bytes: Uint8Array) => new OctetString({ valueHex: bytes });

function checkLength(name: string, bytes: Uint8Array, expected: number): void {
  if (bytes.length !== expected) throw new RangeError(`SGX extension: ${name} must be ${expected} bytes, got ${bytes.length}`);
}

/** DER of the extension value (the content of the extnValue OCTET STRING). */
export function encodeSgxExtension(ext: SgxPckExtension): Uint8Array {
  checkLength("PPID", ext.ppid, 16);
  checkLength("PCE-ID", ext.pceId, 2);
  checkLength("FMSPC", ext.fmspc, 6);
  if (ext.tcbComponents.length !== 16 || ext.tcbComponents.some((svn) => !Number.isInteger(svn) || svn < 0 || svn > 255)) {
    throw new RangeError("SGX extension: tcbComponents must be 16 integers in 0..255");
  }
  if (!Number.isInteger(ext.pceSvn) || ext.pceSvn < 0 || ext.pceSvn > 0xffff) {
    throw new RangeError("SGX extension: pceSvn must be an integer in 0..65535");
  }
  const tcb = `${SGX_EXTENSION_OID}.2`;
  const tcbEntries = ext.tcbComponents.map((svn, i) => entry(`${tcb}.${i + 1}`, new Integer({ value: svn })));
  tcbEntries.push(entry(`${tcb}.17`, new Integer({ value: ext.pceSvn })));
  tcbEntries.push(entry(`${tcb}.18`, octets(Uint8Array.from(ext.tcbComponents))));
  const der = new Sequence({
    value: [
      entry(`${SGX_EXTENSION_OID}.1`, octets(ext.ppid)),
      entry(tcb, new Sequence({ value: tcbEntries })),
      entry(`${SGX_EXTENSION_OID}.3`, octets(ext.pceId)),
      entry(`${SGX_EXTENSION_OID}.4`, octets(ext.fmspc)),
      entry(`${SGX_EXTENSION_OID}.5`, new Enumerated({ value: ext.sgxType })),
    ],
  }).toBER();
  return new Uint8Array(der);
}
