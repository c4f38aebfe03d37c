/**
 * The CLI's errors and its one mapping from an error to an exit status:
 * 2 for a command line that cannot be acted on or input that cannot be read
 * (UsageError, node:util parseArgs errors), 1 for a typed refusal or failure
 * (an error with a `code`: every module's errors.ts), and 1 for anything
 * unexpected, whose message then says what to do next.
 */
import { CloisterError, type CloisterErrorOptions } from "../util/base-error.ts";

/** A command line that cannot be acted on, or input that cannot be read (exit code 2), with what to do instead. */
export class UsageError extends CloisterError<"USAGE"> {
  readonly exitCode = 2;
  constructor(message: string, options?: CloisterErrorOptions) {
    super("USAGE", message, options);
  }
}

export interface CliFailure {
  exitCode: 1 | 2;
  code: string;
  message: string;
  /** A typed error's details (safe to print by CloisterError's contract), for --json. */
  details?: Readonly<Record<string, unknown>>;
}

/** How the CLI reports `error`; `command` is what `cloister <command> --help` explains (e.g. "task run"). */
export function describeFailure(error: unknown, command: string | undefined): CliFailure {
  const e: Error = error instanceof Error ? error : new Error(String(error));
  const rawCode = (e as { code?: unknown }).code;
  const code = typeof rawCode === "string" ? rawCode : undefined;
  const help = `run 'cloister ${command ? `${command} ` : ""}--help' for its usage`;
  if (e instanceof UsageError) return { exitCode: 2, code: "USAGE", message: e.message, ...withDetails(e) };
  if (code?.startsWith("ERR_PARSE_ARGS_")) return { exitCode: 2, code: "USAGE", message: `${parseArgsMessage(e.message)}; ${help}` };
  const refused = refusedConnection(e);
  if (refused) {
    return { exitCode: 1, code: "UNREACHABLE", message: `cannot connect to ${refused}: is the network running? ('cloister devnet up' starts one; check --network or --rpc/--ipfs)` };
  }
  if (code && !/^(E[A-Z]+|ERR_[A-Z_]+)$/.test(code)) return { exitCode: 1, code, message: e.message, ...withDetails(e) };
  return {
    exitCode: 1,
    code: code ?? "UNEXPECTED",
    message: `${e.message}\n(an unexpected error: run again with CLOISTER_DEBUG=1 to see where it happened, and report it with that output if it persists)`,
  };
}

function withDetails(e: Error): Pick<CliFailure, "details"> {
  return e instanceof CloisterError && e.details !== undefined ? { details: e.details } : {};
}

/** node:util's parseArgs messages, in the CLI's words (they name the option as given). */
function parseArgsMessage(message: string): string {
  const unknown = message.match(/^Unknown option '([^']+)'/);
  if (unknown) return `unknown option '${unknown[1]}'`;
  return message.replace(/\. To specify .*$/s, "").replace(/^./, (c) => c.toLowerCase());
}

/** The address of a refused TCP connection anywhere in the error's cause chain. */
function refusedConnection(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; address?: unknown; port?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 8; e = e.cause as typeof e, depth++) {
    if (e.code === "ECONNREFUSED") return typeof e.address === "string" ? `${e.address}:${String(e.port)}` : "the network";
  }
  return undefined;
}
