/**
 * How the CLI talks to people: progress on stderr (so stdout stays the
 * command's result), human text by default, one JSON object with --json.
 * Progress shows when stderr is a terminal, or with CLOISTER_PROGRESS=1 (a
 * CI log); in a pipe the CLI is quiet but for errors.
 */
export interface Reporter {
  /** A step of long work, shown as it happens. */
  step(message: string): void;
  /** A detail under the current step. */
  detail(message: string): void;
}

export const silentReporter: Reporter = { step() {}, detail() {} };

const useColor = process.stderr.isTTY && !process.env.NO_COLOR;
const dim = (s: string) => (useColor ? `\x1b[2m${s}\x1b[0m` : s);
const bold = (s: string) => (useColor ? `\x1b[1m${s}\x1b[0m` : s);

/** Whether long work shows its progress on stderr. */
export function progressWanted(): boolean {
  const forced = process.env.CLOISTER_PROGRESS;
  if (forced === "1") return true;
  if (forced === "0") return false;
  return process.stderr.isTTY === true;
}

/** Progress on stderr, shown when progressWanted() (or `always`, for the demo's story) and not `quiet`. */
export function stderrReporter(options: { quiet?: boolean; always?: boolean } = {}): Reporter {
  if (options.quiet || !(options.always || progressWanted())) return silentReporter;
  const started = performance.now();
  const stamp = () => dim(`[${((performance.now() - started) / 1000).toFixed(2).padStart(6)}s]`);
  return {
    step(message) {
      process.stderr.write(`${stamp()} ${bold("•")} ${message}\n`);
    },
    detail(message) {
      process.stderr.write(`${" ".repeat(10)}  ${dim(message)}\n`);
    },
  };
}

const bigintsAsText = (_k: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v);

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, bigintsAsText)}\n`);
}

/** A failure under --json: one JSON object, the last line on stderr (stdout holds results only). */
export function printJsonError(error: { code: string; message: string; details?: Readonly<Record<string, unknown>> }): void {
  process.stderr.write(`${JSON.stringify({ error }, bigintsAsText)}\n`);
}
