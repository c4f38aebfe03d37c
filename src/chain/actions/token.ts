/** ERC-20 helpers for tasks paid in a token. */
import { erc20Abi, type Address, type Client } from "viem";
import { readContract } from "viem/actions";
import type { WriterClient } from "../clients.ts";
import { writeContractTransaction, type TxResult } from "./send-transaction.ts";

export function readTokenBalance(client: Client, token: Address, account: Address): Promise<bigint> {
  return readContract(client, { address: token, abi: erc20Abi, functionName: "balanceOf", args: [account] });
}

export function readAllowance(client: Client, token: Address, owner: Address, spender: Address): Promise<bigint> {
  return readContract(client, { address: token, abi: erc20Abi, functionName: "allowance", args: [owner, spender] });
}

/** Lets `spender` (the market) pull `amount` of the client's tokens. */
export function approveToken(client: WriterClient, token: Address, spender: Address, amount: bigint): Promise<TxResult> {
  return writeContractTransaction(client, "approve", { address: token, abi: erc20Abi, functionName: "approve", args: [spender, amount] });
}
