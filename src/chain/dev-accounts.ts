/**
 * Well-known development accounts of the local chain. Their private keys are
 * derived from public labels, so anyone can recompute them: they exist only to
 * fund and drive a local network and must never hold value elsewhere.
 *
 * The network's own accounts (deployer, attester, requester, operators) come
 * from Cloister labels; the ten user accounts come from the standard test
 * mnemonic ("test test ... junk", m/44'/60'/0'/0/i), so they are the same
 * well-known accounts as Hardhat's and Anvil's and the same on every devnet.
 */
import { pbkdf2Sync } from "node:crypto";
import { keccak256, stringToBytes, toHex, type Hex } from "viem";
import { HDKey, type PrivateKeyAccount } from "viem/accounts";
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

/** The standard test mnemonic of Ethereum development tools: its keys are public. */
export const testMnemonic = "test test test test test test test test test test test junk";
/** User accounts a new local chain funds: indexes 0 to 9 of the test mnemonic. */
export const devUserCount = 10;

let userKeys: Hex[] | undefined;

/** The private keys of user accounts 0..9 (BIP-39 seed of the test mnemonic, BIP-44 path m/44'/60'/0'/0/i). */
export function devUserKeys(): Hex[] {
  if (!userKeys) {
    const seed = pbkdf2Sync(testMnemonic.normalize("NFKD"), "mnemonic", 2048, 64, "sha512");
    const root = HDKey.fromMasterSeed(seed);
    userKeys = Array.from({ length: devUserCount }, (_, i) => toHex(root.derive(`m/44'/60'/0'/0/${i}`).privateKey!));
  }
  return userKeys;
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
