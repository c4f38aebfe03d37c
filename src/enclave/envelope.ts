/** Parsing of the task envelope blob inside the enclave: the protocol's strict schema, refused as an EnclaveError. */
import { parseTaskEnvelope, TaskEnvelopeError, type TaskEnvelope } from "../protocol/task.ts";
import { EnclaveError } from "./errors.ts";

export function parseEnvelope(bytes: Uint8Array): TaskEnvelope {
  try {
    return parseTaskEnvelope(bytes);
  } catch (e) {
    if (e instanceof TaskEnvelopeError) throw new EnclaveError("MALFORMED_ENVELOPE", e.message, { cause: e });
    throw e;
  }
}
