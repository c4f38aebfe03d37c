import { CloisterError } from "../../util/base-error.ts";

/**
 * What can go wrong in a pipeline run inside the enclave, before the job
 * module turns it into an EnclaveError for the gate. Messages never carry a
 * connection url's password nor a row (connectors redact urls).
 */
export type PipelineRunErrorCode = "PIPELINE_TRANSFORM_FAILED" | "PIPELINE_BAD_DESTINATION" | "PIPELINE_LOAD_FAILED";

export class PipelineRunError extends CloisterError<PipelineRunErrorCode> {}
