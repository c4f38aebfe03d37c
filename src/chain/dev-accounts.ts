/**
 * Well-known development accounts of the local chain. Their private keys are
 * derived from public labels, so anyone can recompute them: they exist only to
 * fund and drive a local network and must never hold value elsewhere.
 */
import { keccak256, stringToBytes, type Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { localAccount } from "../crypto/secp256k1-account.ts";

export interface DevKeys<T> {
  deployer: T;
  attester: T;
  requester: T;
  operators: T[];
}

/** 10,000 ether per account. */
export const devAccountBalance = 10_000n * 10n ** 18n;

function devKey(label: string): Hex {
  return keccak256(stringToBytes(`cloister/dev-account/v1/${label}`));
}

export function devPrivateKeys(operatorCount: number): DevKeys<Hex> {
  if (!Number.isInteger(operatorCount) || operatorCount < 0) {
    throw new RangeError(`operator count must be a non-negative integer, got ${operatorCount}`);
  }
  return {
    deployer: devKey("deployer"),
    attester: devKey("attester"),
    requester: devKey("requester"),
    operators: Array.from({ length: operatorCount }, (_, i) => devKey(`operator/${i}`)),
  };
}

export function devAccounts(keys: DevKeys<Hex>): DevKeys<PrivateKeyAccount> {
  return {
    deployer: localAccount(keys.deployer),
    attester: localAccount(keys.attester),
    requester: localAccount(keys.requester),
    operators: keys.operators.map((k) => localAccount(k)),
  };
}

export function allDevKeys(keys: DevKeys<Hex>): Hex[] {
  return [keys.deployer, keys.attester, keys.requester, ...keys.operators];
}
