/**
 * How the CLI talks to people: progress on stderr (so stdout stays the
 * command's result), human text by default, one JSON object with --json.
 */
export interface Reporter {
  /** A step of long work, shown as it happens. */
  step(message: string): void;
  /** A detail under the current step. */
  detail(message: string): void;
}

const useColor = process.stderr.isTTY && !process.env.NO_COLOR;
const dim = (s: string) => (useColor ? `\x1b[2m${s}\x1b[0m` : s);
const bold = (s: string) => (useColor ? `\x1b[1m${s}\x1b[0m` : s);

export function stderrReporter(options: { quiet?: boolean } = {}): Reporter {
  const started = performance.now();
  const stamp = () => dim(`[${((performance.now() - started) / 1000).toFixed(2).padStart(6)}s]`);
  return {
    step(message) {
      if (!options.quiet) process.stderr.write(`${stamp()} ${bold("•")} ${message}\n`);
    },
    detail(message) {
      if (!options.quiet) process.stderr.write(`${" ".repeat(10)}  ${dim(message)}\n`);
    },
  };
}

export const silentReporter: Reporter = { step() {}, detail() {} };

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v))}\n`);
}
