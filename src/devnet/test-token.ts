/**
 * A devnet's test token: a TestToken (anyone may mint) deployed once per
 * chain, with `perAccount` minted to each user account then, and recorded in
 * `<dir>/test-token.json` so a resumed devnet finds it again.
 */
import { readFile, writeFile } from "node:fs/promises";
import type { Address } from "viem";
import { getCode } from "viem/actions";
import { testTokenAbi } from "../chain/abi/TestToken.ts";
import { writeContractTransaction } from "../chain/actions/send-transaction.ts";
import type { WriterClient } from "../chain/clients.ts";
import { deployTestToken } from "../chain/deploy.ts";

/** 1,000,000 tokens of 18 decimals. */
export const testTokenPerAccount = 1_000_000n * 10n ** 18n;

export async function deployOrReuseTestToken(deployer: WriterClient, options: { chainId: number; path: string; recipients: readonly Address[] }): Promise<Address> {
  const saved = await readSaved(options.path);
  if (saved && saved.chainId === options.chainId) {
    const code = await getCode(deployer, { address: saved.address });
    if (code && code !== "0x") return saved.address;
  }
  const address = await deployTestToken(deployer);
  for (const to of options.recipients) {
    await writeContractTransaction(deployer, "mint", { address, abi: testTokenAbi, functionName: "mint", args: [to, testTokenPerAccount] });
  }
  await writeFile(options.path, `${JSON.stringify({ chainId: options.chainId, address }, null, 2)}\n`);
  return address;
}

async function readSaved(path: string): Promise<{ chainId: number; address: Address } | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as { chainId: number; address: Address };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
