/**
 * The single entry point for checking evidence: authenticity first (`ok`),
 * then the policy's verdict (`accepted`). Claims are returned whenever the
 * evidence could be parsed, also when it is not authentic, so callers can
 * show what was presented; only claims of `ok` evidence may be trusted.
 */
import { AttestationError } from "./dcap/errors.ts";
import { describeQuote, toUnixSeconds, verifyDcapQuote } from "./dcap/verify-quote.ts";
import { evaluatePolicy, type Policy } from "./policy.ts";
import type { Claims, Evidence, VerificationResult } from "./types.ts";

export { verifyDcapQuote, verifyDcapQuoteSync, describeQuote, type DcapVerifyOptions } from "./dcap/verify-quote.ts";
export { AttestationError, type AttestationErrorCode } from "./dcap/errors.ts";

export interface VerifyEvidenceOptions {
  policy: Policy;
  /** Evaluation time: a Date or unix seconds; defaults to now. */
  now?: Date | number;
  /** report_data the caller expects (its nonce binding), 64 bytes. */
  expectedReportData?: Uint8Array;
}

function describeError(e: unknown): string {
  if (e instanceof AttestationError) return `${e.code}: ${e.message}`;
  return `INTERNAL: ${(e as Error)?.message ?? String(e)}`;
}

async function authenticate(evidence: Evidence, policy: Policy, now: number): Promise<Claims> {
  switch (evidence.teeType) {
    case "SGX":
    case "TDX": {
      const claims = await verifyDcapQuote(evidence.quote, evidence.collateral, {
        now,
        trustedRoots: policy.trustedRoots,
        simulatedRoots: policy.simulatedRoots,
      });
      if (claims.teeType !== evidence.teeType) {
        throw new AttestationError("QUOTE_MALFORMED", `evidence is labelled ${evidence.teeType} but the quote is a ${claims.teeType} quote`);
      }
      return claims;
    }
    case "SEV-SNP": {
      // Loaded on demand so that DCAP-only users do not load the SEV-SNP verifier.
      const { verifySnpReport } = await import("./snp/verify.ts");
      const { claims } = await verifySnpReport(evidence.report, evidence.collateral, { now, arkPem: policy.snpArkPem });
      return claims;
    }
    default:
      throw new AttestationError("UNSUPPORTED_TEE", `TEE type ${JSON.stringify((evidence as { teeType: unknown }).teeType)} is not supported (SGX, TDX or SEV-SNP)`);
  }
}

/** Verifies evidence and applies the policy. Never throws for bad evidence: failures are in `error` / `reasons`. */
export async function verifyEvidence(evidence: Evidence, options: VerifyEvidenceOptions): Promise<VerificationResult> {
  const now = toUnixSeconds(options.now);
  try {
    const claims = await authenticate(evidence, options.policy, now);
    const reasons = evaluatePolicy(claims, options.policy, { now, expectedReportData: options.expectedReportData });
    return { ok: true, accepted: reasons.length === 0, claims, reasons };
  } catch (e) {
    if (!(e instanceof AttestationError)) throw e;
    const claims = evidence.teeType === "SGX" || evidence.teeType === "TDX" ? describeQuote(evidence.quote, evidence.collateral) : undefined;
    const error = describeError(e);
    return { ok: false, accepted: false, ...(claims ? { claims } : {}), error, reasons: [`evidence is not authentic: ${error}`] };
  }
}
