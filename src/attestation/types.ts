/**
 * The attestation layer's interfaces. Providers produce evidence inside an
 * enclave; verifiers check it against a policy. Everything downstream (the
 * attestation service, the SDK, enclaves verifying peers) talks only to these.
 */

export type TeeType = "SGX" | "TDX" | "SEV-SNP";

/** Intel's TCB status names, as the reference verifier reports them. */
export type TcbStatus =
  | "UpToDate"
  | "SWHardeningNeeded"
  | "ConfigurationNeeded"
  | "ConfigurationAndSWHardeningNeeded"
  | "OutOfDate"
  | "OutOfDateConfigurationNeeded"
  | "Revoked";

/**
 * Intel DCAP collateral in the JSON shape of dcap-qvl's QuoteCollateralV3
 * (see shared/testdata/attestation/README.md): signed JSON kept as the exact
 * signed text, signatures as hex r||s, CRLs as hex DER, chains as PEM.
 */
export interface DcapCollateral {
  tcb_info: string;
  tcb_info_signature: string;
  tcb_info_issuer_chain: string;
  qe_identity: string;
  qe_identity_signature: string;
  qe_identity_issuer_chain: string;
  pck_crl: string;
  pck_crl_issuer_chain: string;
  root_ca_crl: string;
  pck_certificate_chain?: string;
}

/** AMD SEV-SNP certificates needed to check a report. */
export interface SnpCollateral {
  /** VCEK certificate, DER. */
  vcek: Uint8Array;
  /** ASK then ARK, PEM. */
  chainPem: string;
}

/** Evidence as published (e.g. on IPFS) and handed to a verifier. */
export type Evidence =
  | { teeType: "SGX" | "TDX"; quote: Uint8Array; collateral?: DcapCollateral }
  | { teeType: "SEV-SNP"; report: Uint8Array; collateral: SnpCollateral };

/** What a verifier established about a piece of evidence. */
export interface Claims {
  teeType: TeeType;
  /** Quote or report format version (3, 4, 5 for DCAP; SNP report version). */
  quoteVersion: number;
  /** MRENCLAVE (SGX), MRTD (TDX) or MEASUREMENT (SEV-SNP), lowercase hex. */
  measurement: string;
  /** MRSIGNER (SGX only), lowercase hex. */
  signer?: string;
  productId?: number;
  svn?: number;
  /** 64 bytes, lowercase hex. */
  reportData: string;
  debug: boolean;
  /** True when the evidence chains to the simulated vendor root. */
  simulated: boolean;
  tcbStatus?: TcbStatus;
  advisoryIds: string[];
  fmspc?: string;
  /** Extra TEE-specific claims (TDX RTMRs, SNP policy and VMPL, ...). */
  extra?: Record<string, unknown>;
}

/** A verifier's verdict: `ok` is authenticity, `accepted` the policy's decision. */
export interface VerificationResult {
  ok: boolean;
  accepted: boolean;
  claims?: Claims;
  /** Why the evidence is not authentic (set when ok is false). */
  error?: string;
  /** Why the policy refused it (set when accepted is false). */
  reasons: string[];
}

/** Produces evidence from inside an enclave. */
export interface AttestationProvider {
  /** "sim", "gramine" or "tsm". */
  readonly name: string;
  readonly teeType: TeeType;
  /** True for the simulated TEE; every display must say SIMULATED then. */
  readonly simulated: boolean;
  /** The measurement of the code this provider attests (lowercase hex). */
  measurement(): Promise<string>;
  /** Evidence whose report_data is exactly these 64 bytes. */
  attest(reportData: Uint8Array): Promise<Evidence>;
}
