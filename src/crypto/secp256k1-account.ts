/**
 * A viem private-key account whose hash and transaction signing run on
 * libsecp256k1 and hash-wasm's keccak instead of viem's @noble code. Every
 * account Cloister makes from a key is one: the enclave's (its completion and
 * provenance signatures are `sign({ hash })`), the node operator's, the
 * development accounts and the devnet client's.
 *
 * Why: a node signs a batch transaction of 5 to 25 KB per block, and with
 * viem's account the keccak of the serialized transaction and noble's
 * signature were ~7% of its CPU in a throughput run. Measured on the 2-core
 * dev machine, an eip1559 signTransaction takes 0.37 ms instead of 1.19 ms
 * with 6 KB of data, 1.45 ms instead of 3.66 ms with 25 KB; what is left is
 * almost all viem's serializer, which runs twice (0.65 ms per run at 25 KB).
 *
 * `signTransaction` follows viem's own algorithm (accounts/utils/
 * signTransaction): an eip4844 transaction is signed without its sidecars;
 * the digest is keccak-256 of the serialized signable transaction; the
 * signature is passed to the serializer as { r, s, v, yParity }. Both
 * signers use RFC 6979 nonces and low s, so the bytes are viem's, as long as
 * viem's `setSignEntropy` (extra signing entropy) is not used, which this
 * module ignores. signMessage, signTypedData and signAuthorization stay
 * viem's.
 */
import { bytesToHex, hexToBytes, serializeTransaction, type Hex, type SerializeTransactionFn, type Signature, type TransactionSerializable } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { keccak256 } from "./keccak.ts";
import { signDigest } from "./secp256k1-native.ts";

export function localAccount(privateKey: Hex): PrivateKeyAccount {
  const account = privateKeyToAccount(privateKey);
  const key = hexToBytes(privateKey);
  const signHash = (hash: Uint8Array): Signature => {
    const { signature, recoveryId } = signDigest(hash, key);
    return {
      r: bytesToHex(signature.subarray(0, 32)),
      s: bytesToHex(signature.subarray(32)),
      v: recoveryId === 1 ? 28n : 27n,
      yParity: recoveryId,
    };
  };
  const signTransaction = async (
    transaction: TransactionSerializable,
    { serializer = serializeTransaction }: { serializer?: SerializeTransactionFn<TransactionSerializable> } = {},
  ): Promise<Hex> => {
    const signable = transaction.type === "eip4844" ? { ...transaction, sidecars: false as const } : transaction;
    const signature = signHash(keccak256(await serializer(signable), "bytes"));
    return await serializer(transaction, signature);
  };
  return {
    ...account,
    sign: async ({ hash }) => {
      const { signature, recoveryId } = signDigest(hexToBytes(hash), key);
      return `${bytesToHex(signature)}${recoveryId === 1 ? "1c" : "1b"}`;
    },
    // viem types this method generically over the serializer; the implementation is the same for every one.
    signTransaction: signTransaction as PrivateKeyAccount["signTransaction"],
  };
}
