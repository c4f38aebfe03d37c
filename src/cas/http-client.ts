/**
 * A node daemon's (or a client's) side of the attestation service over HTTP
 * (http-server.ts). Refusals come back as the service's own CasError; a
 * service that cannot be reached or answers nonsense gives CasHttpError.
 */
import { getAddress, type Hex } from "viem";
import { z } from "zod";
import type { AttestationServiceClient } from "./client.ts";
import { CasError, type CasErrorCode } from "./errors.ts";
import { hexSchema as hex } from "../protocol/schemas.ts";
import { deploymentFromJson, deploymentJsonSchema, type Deployment } from "../chain/deployment.ts";
import { CloisterError } from "../util/base-error.ts";

export type CasHttpErrorCode = "CAS_UNREACHABLE" | "CAS_BAD_RESPONSE" | "CAS_FAILED";

export class CasHttpError extends CloisterError<CasHttpErrorCode> {}

export interface CasHttpClient extends AttestationServiceClient {
  readonly url: string;
  challenge(): Promise<Hex>;
  /** The contract addresses the service publishes (GET /deployment). */
  deployment(): Promise<Deployment>;
}

const CAS_CODES: ReadonlySet<string> = new Set<CasErrorCode>(["NONCE_UNKNOWN", "EVIDENCE_UNAVAILABLE", "EVIDENCE_REFUSED"]);
const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), reasons: z.array(z.string()).default([]) }) });
const challengeBody = z.object({ nonce: hex });
const registerBody = z.object({ expiry: z.string().regex(/^\d+$/), transactionHash: hex });

export function casHttpClient(url: string, options: { timeoutMs?: number } = {}): CasHttpClient {
  const base = url.replace(/\/+$/, "");
  const timeoutMs = options.timeoutMs ?? 30_000;

  async function call<T>(method: "GET" | "POST", path: string, schema: z.ZodType<T>, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (cause) {
      throw new CasHttpError("CAS_UNREACHABLE", `cannot reach the attestation service at ${base} (${method} ${path}): ${(cause as Error).message}; check that it is running (cloister devnet up) and the URL`, { cause });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new CasHttpError("CAS_BAD_RESPONSE", `the attestation service at ${base} answered ${method} ${path} with HTTP ${res.status} and a body that is not JSON; is the URL that of a Cloister attestation service?`);
    }
    if (!res.ok) {
      const failure = errorBody.safeParse(json);
      if (!failure.success) throw new CasHttpError("CAS_BAD_RESPONSE", `the attestation service at ${base} answered ${method} ${path} with HTTP ${res.status} and no error description`);
      const { code, message, reasons } = failure.data.error;
      if (CAS_CODES.has(code)) throw new CasError(code as CasErrorCode, message, reasons);
      throw new CasHttpError("CAS_FAILED", `the attestation service at ${base} failed ${method} ${path} (${code}): ${message}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new CasHttpError("CAS_BAD_RESPONSE", `the attestation service at ${base} sent a malformed answer to ${method} ${path}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
    return parsed.data;
  }

  return {
    url: base,
    async challenge() {
      return (await call("POST", "/challenge", challengeBody)).nonce;
    },
    async register(request) {
      const r = await call("POST", "/register", registerBody, request);
      return { expiry: BigInt(r.expiry), transactionHash: r.transactionHash };
    },
    async deployment() {
      const d = deploymentFromJson(await call("GET", "/deployment", deploymentJsonSchema), `${base}/deployment`);
      return { ...d, registry: getAddress(d.registry), market: getAddress(d.market) };
    },
  };
}
