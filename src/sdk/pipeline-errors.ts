import { CloisterError } from "../util/base-error.ts";

/** No enclave of the registry passes the owner's policy: a pipeline cannot be sealed to anyone. */
export class NoVerifiedEnclaveError extends CloisterError<"NO_VERIFIED_ENCLAVE"> {}
