/**
 * What a granted manipulation reads from the chain, at one trusted block: the
 * grant's two packed words and its dataset and statement digest (Grants), and
 * the enclave's own registry entry (EnclaveRegistry), so the enclave knows the
 * operator it runs for without the host saying it. The trusted block: when
 * the owner sealed chain endpoints with the dataset, their quorum's
 * checkpoint (http-endpoints.ts); otherwise the host's, which runs the same
 * reads through a recording endpoint that the enclave replays and verifies.
 */
import { getAddress, type Address, type Hex } from "viem";
import { decodeGrantOperatorWord, decodeGrantOwnerWord, grantsStorage } from "../../protocol/grants.ts";
import { decodeRegistryEnclaveWord, registryStorage } from "../../protocol/operate.ts";
import { ChainView } from "../chain-view/chain-view.ts";
import type { TrustedHeader } from "../chain-view/header.ts";
import { singleEndpointHeaderSource } from "../chain-view/quorum.ts";
import type { ChainEndpoint } from "../chain-view/rpc.ts";
import { mappingSlot, slotPlus } from "../chain-view/slots.ts";

export interface GrantOnChain {
  block: TrustedHeader;
  grant: ReturnType<typeof decodeGrantOwnerWord> & ReturnType<typeof decodeGrantOperatorWord> & { dataset: Hex; statementDigest: Hex };
  /** This enclave's registry entry: its operator (zero when unregistered), expiry and revocation. */
  enclave: ReturnType<typeof decodeRegistryEnclaveWord>;
}

export interface GrantReadTarget {
  chainId: number;
  grants: Address;
  grantId: bigint;
  registry: Address;
  enclave: Address;
}

/** The view of one endpoint that chooses its own block: the host's recording, or the enclave's replay of it. */
export function singleEndpointView(chainId: number, endpoint: ChainEndpoint): ChainView {
  return new ChainView({ headers: singleEndpointHeaderSource(chainId, endpoint), data: endpoint });
}

export async function readGrantOnChain(view: ChainView, target: GrantReadTarget): Promise<GrantOnChain> {
  const block = await view.header();
  const base = mappingSlot({ type: "uint256", value: target.grantId }, grantsStorage.grantsSlot);
  const word = async (offset: bigint) => (await view.read({ address: target.grants, slot: slotPlus(base, offset), blockTag: block })).value;
  const owner = decodeGrantOwnerWord(await word(0n));
  const operator = decodeGrantOperatorWord(await word(1n));
  const dataset = await word(2n);
  const statementDigest = await word(3n);
  const enclaveWord = await view.read({ address: target.registry, mapping: { slot: registryStorage.enclavesSlot, keys: [{ type: "address", value: getAddress(target.enclave) }] }, blockTag: block });
  return { block, grant: { ...owner, ...operator, dataset, statementDigest }, enclave: decodeRegistryEnclaveWord(enclaveWord.value) };
}
