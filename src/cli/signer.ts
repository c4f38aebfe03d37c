/**
 * Who signs a command's transactions: `--account <i>` (one of a devnet's
 * funded test accounts, whose keys are public) or the CLOISTER_PRIVATE_KEY
 * environment variable (a 0x hex key; never a flag, which would show in the
 * process list and the shell's history).
 */
import { isHex, type Hex } from "viem";
import { devUserKeys } from "../chain/dev-accounts.ts";
import type { NetworkFile } from "../devnet/network-file.ts";
import { UsageError } from "./errors.ts";

export const privateKeyEnvVar = "CLOISTER_PRIVATE_KEY";

export function signerKey(account: string | undefined, network: NetworkFile | undefined): Hex {
  if (account !== undefined) return devAccountKey(account, network);
  const key = process.env[privateKeyEnvVar];
  if (key === undefined || key === "") {
    throw new UsageError(
      `no account to sign with: pass --account <0-9> with a devnet's --network (its funded test accounts, listed by 'cloister devnet accounts'), or set ${privateKeyEnvVar}=0x<64 hex digits> for any other network`,
    );
  }
  if (!isHex(key) || key.length !== 66) throw new UsageError(`${privateKeyEnvVar} must be 0x followed by 64 hex digits (a secp256k1 private key)`);
  return key;
}

function devAccountKey(account: string, network: NetworkFile | undefined): Hex {
  if (!network) throw new UsageError("--account <i> picks one of a devnet's accounts: give the devnet with --network <dir> (or CLOISTER_NETWORK)");
  if (network.devAccounts === 0) {
    throw new UsageError(`--account works on a devnet only, and the network file ${network.path} names no development accounts; set ${privateKeyEnvVar} instead`);
  }
  const index = /^\d+$/.test(account) ? Number(account) : NaN;
  if (!(index < network.devAccounts)) throw new UsageError(`--account takes a devnet account index from 0 to ${network.devAccounts - 1}, got '${account}'`);
  return devUserKeys()[index]!;
}
