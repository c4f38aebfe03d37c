import { CloisterError, type CloisterErrorOptions } from "../util/base-error.ts";

/** A local network that cannot start, or a client that cannot reach one, with what to do about it. */
export class DevnetError extends CloisterError<"DEVNET"> {
  constructor(message: string, options?: CloisterErrorOptions) {
    super("DEVNET", message, options);
  }
}
