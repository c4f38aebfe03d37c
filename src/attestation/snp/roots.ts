/**
 * Pinned AMD Root Keys. The ARK arrives in the certificate chain with every
 * report; it is trusted only if its DER hashes to one of these values.
 *
 * - ARK-Milan: the production root of the Milan test vectors in
 *   shared/testdata/attestation (issued 2020-10-22, expires 2045-10-22).
 * - ARK-Genoa: from kdsintf.amd.com/vcek/v1/Genoa/cert_chain; the fingerprint
 *   was computed here from a published copy of the certificate (self-signature
 *   checked) and matches an independently published fingerprint.
 * Turin and VLEK-specific roots are not pinned: pass `arkPem` to trust another root.
 */
export const PINNED_ARKS: ReadonlyMap<string, string> = new Map([
  ["69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd", "ARK-Milan"],
  ["4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1", "ARK-Genoa"],
]);
