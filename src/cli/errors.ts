/** A command line that cannot be acted on (exit code 2), with what to do instead. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
