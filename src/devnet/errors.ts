/** A local network that cannot start, or a client that cannot reach one, with what to do about it. */
export class DevnetError extends Error {
  readonly code = "DEVNET";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DevnetError";
  }
}
