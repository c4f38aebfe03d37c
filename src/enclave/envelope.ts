/** Parsing and checking of the task envelope blob inside the enclave. */
import { z } from "zod";
import type { TaskEnvelope } from "../protocol/task.ts";
import { EnclaveError } from "./errors.ts";

const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/) as unknown as z.ZodType<`0x${string}`>;
const hex = z.string().regex(/^0x[0-9a-fA-F]*$/) as unknown as z.ZodType<`0x${string}`>;
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/) as unknown as z.ZodType<`0x${string}`>;

const envelopeSchema = z.object({
  version: z.literal(1),
  taskId: z.string().regex(/^[0-9]+$/),
  program: z.object({ cid: z.string(), digest: hex32 }),
  input: z.object({ cid: z.string(), digest: hex32 }),
  resultKey: hex,
  wrappedKeys: z.array(z.object({ enclave: address, enc: hex, ciphertext: hex })),
  limits: z.object({
    memoryMb: z.number().int().positive().max(4096),
    timeoutMs: z.number().int().positive().max(3_600_000),
    maxOutputBytes: z.number().int().nonnegative().max(1 << 30),
  }),
});

export function parseEnvelope(bytes: Uint8Array): TaskEnvelope {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new EnclaveError("MALFORMED_ENVELOPE", "task envelope is not UTF-8 JSON", { cause });
  }
  const parsed = envelopeSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EnclaveError("MALFORMED_ENVELOPE", `task envelope is invalid at ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data as TaskEnvelope;
}
