/**
 * The marks by which evidence of Cloister's simulated TEE is recognized
 * whatever root a policy trusts: every certificate of the simulated vendor
 * PKI names the SIMULATED TEE organization in its subject, and every
 * simulated quote ends its header's user data with "CSIM". The verifier
 * decides `simulated` from these marks on the evidence itself, not only
 * from which root list matched.
 */
import type { Cert } from "./cert.ts";

/** The subject organization (O) of every certificate of the simulated vendor PKI. */
export const SIMULATED_TEE_ORGANIZATION = "Cloister SIMULATED TEE - not Intel";

/** The last 4 bytes of a simulated quote header's 20-byte user data (Intel's QE leaves them zero). */
export const SIMULATED_QUOTE_MARK = new Uint8Array([0x43, 0x53, 0x49, 0x4d]); // "CSIM"

export function isSimulatedCert(cert: Cert): boolean {
  return cert.x509.subject.split("\n").includes(`O=${SIMULATED_TEE_ORGANIZATION}`);
}

export function isSimulatedQuoteHeader(userData: Uint8Array): boolean {
  return userData.length === 20 && SIMULATED_QUOTE_MARK.every((b, i) => userData[16 + i] === b);
}
