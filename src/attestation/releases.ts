/**
 * The measurements of Cloister's released enclave images, read from
 * releases/enclave-measurements.json (outside the measured code, so that
 * publishing a measurement does not change it). The strict default policy
 * pins exactly these. Each entry names its release and TEE image:
 * `{ "version": "0.2.0", "image": "tdx-guest", "teeType": "TDX", "measurement": "<hex>" }`.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { AttestationError } from "./dcap/errors.ts";

export const RELEASES_FILE = new URL("../../releases/enclave-measurements.json", import.meta.url);

const releasesSchema = z.strictObject({
  format: z.literal("cloister-enclave-releases-v1"),
  notice: z.string().optional(),
  releases: z.array(z.strictObject({
    version: z.string().min(1),
    image: z.string().min(1),
    teeType: z.enum(["SGX", "TDX", "SEV-SNP"]),
    measurement: z.string().regex(/^([0-9a-f]{64}|[0-9a-f]{96})$/, "is not a lowercase hex measurement of 32 or 48 bytes"),
  })),
});

let cached: string[] | undefined;

/** Lowercase hex measurements of every released enclave image; empty until one is released. */
export function releasedEnclaveMeasurements(): string[] {
  if (!cached) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(RELEASES_FILE, "utf8"));
    } catch (e) {
      throw new AttestationError("POLICY_INVALID", `cannot read the released enclave measurements ${RELEASES_FILE.pathname}: ${(e as Error).message}`);
    }
    const parsed = releasesSchema.safeParse(json);
    if (!parsed.success) {
      const where = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
      throw new AttestationError("POLICY_INVALID", `${RELEASES_FILE.pathname} is not a valid list of released enclave measurements: ${where}`);
    }
    cached = parsed.data.releases.map((r) => r.measurement);
  }
  return [...cached];
}
