/**
 * The one base of every typed error in Cloister, in the manner of viem's
 * BaseError: a stable machine-readable `code`, a `shortMessage` that says what
 * went wrong (and, where it helps, what to do next), optional structured
 * `details` that are safe to print and publish, and the `cause` it wraps.
 *
 * `message` is the short message itself, so logs and CLI output read the same
 * as before; `details` and the cause chain are for `--json` output and logs.
 * Modules narrow `code` to their own union (EnclaveErrorCode, CasErrorCode, ...)
 * and keep their own class name so `instanceof` still tells where an error
 * came from.
 */

export interface CloisterErrorOptions {
  /** The error this one wraps. */
  cause?: unknown;
  /** Values that explain the failure; must be safe to publish (no secrets, no plaintext). */
  details?: Readonly<Record<string, unknown>>;
}

export class CloisterError<Code extends string = string> extends Error {
  readonly code: Code;
  readonly shortMessage: string;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: Code, shortMessage: string, options: CloisterErrorOptions = {}) {
    super(shortMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.shortMessage = shortMessage;
    this.details = options.details;
  }

  /** What `--json` output and structured logs print: code, message, details and the codes of the causes. */
  toJSON(): { name: string; code: Code; message: string; details?: Readonly<Record<string, unknown>>; causes?: { name: string; code?: string; message: string }[] } {
    const causes: { name: string; code?: string; message: string }[] = [];
    for (let c: unknown = this.cause; c instanceof Error && causes.length < 8; c = c.cause) {
      const code = (c as { code?: unknown }).code;
      causes.push({ name: c.name, ...(typeof code === "string" ? { code } : {}), message: c.message });
    }
    return { name: this.name, code: this.code, message: this.shortMessage, ...(this.details ? { details: this.details } : {}), ...(causes.length ? { causes } : {}) };
  }
}

/** True for any Cloister typed error, whichever module threw it. */
export function isCloisterError(e: unknown): e is CloisterError {
  return e instanceof CloisterError;
}
