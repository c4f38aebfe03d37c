/**
 * A failure of the requester's program (as opposed to an integrity failure of
 * the task): it becomes an error record encrypted to the requester, and the
 * task completes normally.
 */
import { CloisterError } from "../../util/base-error.ts";

export type ProgramErrorCode =
  | "PROGRAM_INVALID"
  | "PROGRAM_THREW"
  | "PROGRAM_BAD_OUTPUT"
  | "TIME_LIMIT_EXCEEDED"
  | "CPU_LIMIT_EXCEEDED"
  | "MEMORY_LIMIT_EXCEEDED"
  | "OUTPUT_LIMIT_EXCEEDED";

export class ProgramError extends CloisterError<ProgramErrorCode> {
  /** CPU time the program used before it failed, once its isolate has been measured (not in `details`: timing stays in the enclave). */
  readonly cpuMs: number | undefined;

  constructor(code: ProgramErrorCode, message: string, options?: { cause?: unknown; cpuMs?: number }) {
    super(code, message, { cause: options?.cause });
    this.cpuMs = options?.cpuMs;
  }

  /** The same failure, with the CPU time the program used. */
  withCpuMs(cpuMs: number): ProgramError {
    return new ProgramError(this.code, this.message, { cause: this.cause, cpuMs });
  }
}
