/** Attestation evidence as it crosses the call gate (attest's result, and peers introduced to clean-room jobs). */
import { z } from "zod";
import { dcapCollateralSchema } from "../attestation/evidence-codec.ts";
import { bytes } from "./jobs/params.ts";

export const evidenceSchema = z.union([
  z.object({ teeType: z.enum(["SGX", "TDX"]), quote: bytes, collateral: dcapCollateralSchema.optional() }).strict(),
  z.object({ teeType: z.literal("SEV-SNP"), report: bytes, collateral: z.object({ vcek: bytes, chainPem: z.string() }).strict() }).strict(),
]);
