/**
 * The EIP-712 digest of a vault Confirmation (vault-contract.ts, `confirmationTypes`), computed directly:
 * hashStruct of each Share is keccak256(typehash ‖ tokenId ‖ version ‖ sharesRoot) over fixed 32-byte words,
 * the array's hash the keccak of their concatenation, then Confirmation's struct hash and
 * keccak256(0x1901 ‖ domainSeparator ‖ structHash) (EIP-712, "encodeData" of an array of structs).
 *
 * Why not viem's hashTypedData: it validates and ABI-encodes every field of every Share through generic code,
 * and an enclave signs every share it holds. Measured for 1,000 shares on the 2-core machine: viem 74 to 127
 * ms, this 8 to 16 ms. The same digest: tested against viem's for random messages, and the contract recovers
 * the signer in the vault tests.
 */
import { domainSeparator, hexToBytes, type Hex } from "viem";
import { keccak256 } from "../crypto/keccak.ts";
import { vaultContractDomain, type ShareConfirmation } from "./vault-contract.ts";

const SHARE_TYPEHASH = keccak256(new TextEncoder().encode("Share(uint256 tokenId,uint64 version,bytes32 sharesRoot)"), "bytes");
const CONFIRMATION_TYPEHASH = keccak256(
  new TextEncoder().encode("Confirmation(uint64 cluster,uint32 epoch,uint8 slot,Share[] shares)Share(uint256 tokenId,uint64 version,bytes32 sharesRoot)"),
  "bytes",
);

const UINT256_MAX = (1n << 256n) - 1n;

/** `value` as a big-endian 32-byte word at `at` of `out` (ABI encoding of a uintN; range-checked by the caller). */
function putWord(out: Uint8Array, at: number, value: bigint): void {
  if (value < 0n || value > UINT256_MAX) throw new RangeError(`${value} does not fit a 256-bit word`);
  out.set(Buffer.from(value.toString(16).padStart(64, "0"), "hex"), at);
}

function checkBits(name: string, value: bigint, bits: number): void {
  if (value < 0n || value >= 1n << BigInt(bits)) throw new RangeError(`confirmation ${name} ${value} is not a uint${bits}`);
}

const separators = new Map<string, Uint8Array>();

function separatorOf(chainId: bigint, vault: Hex): Uint8Array {
  const id = `${chainId}:${vault.toLowerCase()}`;
  let kept = separators.get(id);
  if (!kept) {
    kept = hexToBytes(domainSeparator({ domain: vaultContractDomain(chainId, vault) }));
    separators.set(id, kept);
  }
  return kept;
}

/** The digest SecretVault recovers a Confirmation's signer from (`confirmationDigest` on the contract). */
export function confirmationDigest(chainId: bigint, vault: Hex, c: ShareConfirmation): Hex {
  checkBits("cluster", c.cluster, 64);
  checkBits("epoch", BigInt(c.epoch), 32);
  checkBits("slot", BigInt(c.slot), 8);
  const shareHashes = new Uint8Array(32 * c.shares.length);
  const share = new Uint8Array(128);
  share.set(SHARE_TYPEHASH, 0);
  for (const [i, s] of c.shares.entries()) {
    checkBits("share version", s.version, 64);
    putWord(share, 32, s.tokenId);
    putWord(share, 64, s.version);
    const root = hexToBytes(s.sharesRoot);
    if (root.length !== 32) throw new RangeError(`a share's sharesRoot must be 32 bytes, got ${root.length}`);
    share.set(root, 96);
    shareHashes.set(keccak256(share, "bytes"), 32 * i);
  }
  const struct = new Uint8Array(160);
  struct.set(CONFIRMATION_TYPEHASH, 0);
  putWord(struct, 32, c.cluster);
  putWord(struct, 64, BigInt(c.epoch));
  putWord(struct, 96, BigInt(c.slot));
  struct.set(keccak256(shareHashes, "bytes"), 128);
  const message = new Uint8Array(66);
  message.set([0x19, 0x01], 0);
  message.set(separatorOf(chainId, vault), 2);
  message.set(keccak256(struct, "bytes"), 34);
  return keccak256(message);
}
