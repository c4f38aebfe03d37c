/**
 * A collaboration's state proved inside a party's enclave (src/enclave/chain-view/): when the party sealed
 * JSON-RPC endpoints it trusts with its datasets (bound by the terms' datasetsDigest, so the host can neither
 * drop nor change them), its enclave takes the checkpoint header from a quorum of them and proves
 * `collaborations[id]` with eth_getProof against it, before it reads or sends a row: the collaboration exists
 * with these terms, every party's approval stands (a withdrawal clears its bit, whatever signatures the host
 * replays), this run is not recorded yet and runs remain, and the DP budget allows the run at the epsilon the
 * chain records as spent. The block is the endpoints' choice, not the host's; a withdrawal within the last
 * `finalityDepth` blocks is not seen yet (the party trades freshness for reorg safety there).
 */
import type { Hex } from "viem";
import { decodePackedCollaboration, collaborationsStorage as layout } from "../../../protocol/collaboration.ts";
import type { CollabChainView } from "../../../protocol/collab-run.ts";
import { ownerChainView } from "../../chain-view/http-endpoints.ts";
import { mappingSlot, slotPlus } from "../../chain-view/slots.ts";
import { chargeEpsilon } from "../../cleanroom/dp-budget.ts";
import { CollabJobError } from "./errors.ts";
import type { CheckedCollaboration } from "./verify.ts";

/** The block a party's state was proved at, and who chose it (a quorum of the party's own endpoints). */
export interface CollabProvedAt {
  number: string;
  hash: Hex;
  timestamp: string;
  chosenBy: "party-endpoints";
}

export interface ProvenCollabState {
  provedAt: CollabProvedAt;
  /** Epsilon the chain records as spent (EPSILON_SCALE units), at that block. */
  dpSpent: bigint;
}

/** Proves that run `runId` of the checked collaboration may run now; refuses with a typed reason otherwise. */
export async function proveCollabState(config: CollabChainView, checked: CheckedCollaboration, runId: number, partyNames: readonly string[]): Promise<ProvenCollabState> {
  const { chainId, contract, collaborationId } = checked.binding;
  const base = mappingSlot({ type: "uint256", value: collaborationId }, layout.collaborationsSlot);
  let words: { block: { number: bigint; hash: Hex; timestamp: bigint }; packed: Hex; termsHash: Hex };
  try {
    const view = ownerChainView(config, Number(chainId));
    const block = await view.header();
    const word = async (offset: bigint) => (await view.read({ address: contract, slot: slotPlus(base, offset), blockTag: block })).value;
    const [packed, termsHash] = await Promise.all([word(layout.words.packed), word(layout.words.termsHash)]);
    words = { block, packed, termsHash };
  } catch (error) {
    throw new CollabJobError("COLLAB_CHAIN_UNPROVEN", `the collaboration's state could not be proved from this party's chain endpoints (${(error as Error).message}); the run waits until a quorum of them answers`, { cause: error });
  }
  const at = words.block.number;
  const state = decodePackedCollaboration(words.packed);
  if (state.partyCount === 0) throw new CollabJobError("COLLAB_TERMS_INVALID", `collaboration ${collaborationId} does not exist on ${contract} at block ${at}`, { details: { block: String(at) } });
  if (words.termsHash.toLowerCase() !== checked.termsHash.toLowerCase() || state.partyCount !== checked.terms.parties.length) {
    throw new CollabJobError("COLLAB_TERMS_INVALID", `collaboration ${collaborationId} holds terms hash ${words.termsHash} at block ${at}, not the terms this job was given (${checked.termsHash})`, { details: { block: String(at) } });
  }
  const withdrawn = checked.terms.parties.flatMap((_, i) => ((state.approvals >> i) & 1 ? [] : [i]));
  if (withdrawn.length > 0) {
    const who = withdrawn.map((i) => `party ${i} (${partyNames[i] ?? "?"})`).join(", ");
    throw new CollabJobError("COLLAB_NOT_APPROVED", `${who} withdrew its approval: it does not stand at block ${at}, whatever earlier signature the host hands over`, {
      details: { block: String(at), withdrawn },
    });
  }
  if (runId <= state.runs) {
    throw new CollabJobError("COLLAB_RUN_RECORDED", `run ${runId} is already recorded (the chain holds ${state.runs} runs at block ${at}): a run is not repeated`, { details: { block: String(at), runs: state.runs } });
  }
  if (state.runs >= state.maxRuns) {
    throw new CollabJobError("COLLAB_MAX_RUNS", `the collaboration has run ${state.runs} of its ${state.maxRuns} allowed times at block ${at}`, { details: { block: String(at), runs: state.runs } });
  }
  if (checked.policy.dp) chargeEpsilon(checked.policy.dp, Number(state.dpSpent) / 1e6, 1);
  return { provedAt: { number: String(at), hash: words.block.hash.toLowerCase() as Hex, timestamp: String(words.block.timestamp), chosenBy: "party-endpoints" }, dpSpent: state.dpSpent };
}
