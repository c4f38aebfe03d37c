/**
 * A failure of the requester's program (as opposed to an integrity failure of
 * the task): it becomes an error record encrypted to the requester, and the
 * task completes normally.
 */

export type ProgramErrorCode =
  | "PROGRAM_INVALID"
  | "PROGRAM_THREW"
  | "PROGRAM_BAD_OUTPUT"
  | "TIME_LIMIT_EXCEEDED"
  | "CPU_LIMIT_EXCEEDED"
  | "MEMORY_LIMIT_EXCEEDED"
  | "OUTPUT_LIMIT_EXCEEDED";

export class ProgramError extends Error {
  readonly code: ProgramErrorCode;
  /** CPU time the program used before it failed, once its isolate has been measured. */
  readonly cpuMs: number | undefined;

  constructor(code: ProgramErrorCode, message: string, options?: { cause?: unknown; cpuMs?: number }) {
    super(message, options);
    this.name = "ProgramError";
    this.code = code;
    this.cpuMs = options?.cpuMs;
  }

  /** The same failure, with the CPU time the program used. */
  withCpuMs(cpuMs: number): ProgramError {
    return new ProgramError(this.code, this.message, { cause: this.cause, cpuMs });
  }
}
