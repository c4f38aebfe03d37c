/**
 * `--network <devnet dir | network file>` (or CLOISTER_NETWORK): reads the
 * network file, turning what is wrong with it into a usage error (exit 2).
 */
import { NetworkFileError, readNetworkFile, type NetworkFile } from "../devnet/network-file.ts";
import { UsageError } from "./errors.ts";

export const networkEnvVar = "CLOISTER_NETWORK";

/** The network named by --network, else by CLOISTER_NETWORK (unless `ignoreEnv`), else none. */
export function namedNetwork(flag: string | undefined, ignoreEnv = false): string | undefined {
  if (flag !== undefined) return flag;
  const env = process.env[networkEnvVar];
  return ignoreEnv || !env ? undefined : env;
}

export async function loadNetwork(fileOrDir: string, fromEnv: boolean): Promise<NetworkFile> {
  try {
    return await readNetworkFile(fileOrDir);
  } catch (error) {
    if (error instanceof NetworkFileError) throw new UsageError(`${fromEnv ? `${networkEnvVar}: ` : "--network: "}${error.message}`);
    throw error;
  }
}
