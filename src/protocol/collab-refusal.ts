/**
 * A node's refusal of a clean-room run as it leaves the node (Collaborations `reportRefusal`, event
 * `RunRefused`): the enclave's typed code only, as ASCII in a bytes32, and a fixed, data-free advice the
 * requester prints beside it. Nothing else of the refusal leaves the node: its message (which names the
 * party's own checks) stays in that node's host.log.
 */
import type { Hex } from "viem";

/** A typed code as the contract accepts it: 1 to 32 of A-Z, 0-9 and _ (the contract's InvalidRefusalCode otherwise). */
const CODE = /^[A-Z0-9_]{1,32}$/;

export function isRefusalCode(code: string): boolean {
  return CODE.test(code);
}

/** The code left-aligned and zero-padded in a bytes32. */
export function encodeRefusalCode(code: string): Hex {
  if (!CODE.test(code)) throw new RangeError(`'${code}' is not a refusal code (1 to 32 of A-Z, 0-9, _)`);
  return `0x${Buffer.from(code, "ascii").toString("hex").padEnd(64, "0")}`;
}

/** The code a RunRefused event carries; undefined when the word is not one (the contract refuses those). */
export function decodeRefusalCode(word: Hex): string | undefined {
  const text = Buffer.from(word.slice(2), "hex").toString("latin1").replace(/\0+$/, "");
  return CODE.test(text) ? text : undefined;
}

const ADVICE: Record<string, string> = {
  COLLAB_NOT_APPROVED: "a party's approval does not stand; every party approves again (collab approve) before the next run",
  COLLAB_TERMS_INVALID: "the node was handed terms other than the collaboration's; check that node's version and its assignment (collab approve --node)",
  COLLAB_QUERY_NOT_APPROVED: "the SQL is not the approved query; the node's run kit is stale or for another collaboration: assign the node again",
  COLLAB_POLICY_MISMATCH: "the policy in the party's run kit is not the approved one: assign the node again from the collaboration's file",
  COLLAB_DATASETS_MISMATCH: "the party's sealed datasets are not the ones the terms name: assign the node again from the file the collaboration was created from",
  COLLAB_PEER_REFUSED: "a peer enclave's attestation or measurement is not the one the terms pin: run each party's side on a node whose enclave the terms accept",
  COLLAB_TRANSFER_INVALID: "the rows between the enclaves did not arrive as announced: request the run again; if it repeats, check both nodes' versions",
  COLLAB_RECIPIENT_PIN_MISMATCH: "the recipient's key or server is not the one the terms pin: the recipient party assigns its node again with its own key",
  COLLAB_DELIVERY_FAILED: "the recipient's table or endpoint did not accept the rows: check that it is up and reachable from the compute node",
  COLLAB_DATASET_NAME: "two parties name a dataset alike: create a new collaboration with unique dataset names",
  COLLAB_CHAIN_UNPROVEN: "the party's chain endpoints did not answer or agree: check its chainView endpoints, then request the run again",
  COLLAB_RUN_RECORDED: "this run is recorded already: request the next run",
  COLLAB_MAX_RUNS: "the collaboration has used all its runs (maxRuns): create a new one",
  DP_BUDGET_EXCEEDED: "the differential-privacy budget is spent: no more runs of this collaboration",
  ROW_LEVEL_OUTPUT: "the query outputs rows, not aggregates: the policy refuses it in every enclave; create a collaboration with an aggregate query",
  AGGREGATE_NOT_ALLOWED: "the query uses an aggregate the policy does not allow: create a collaboration whose query and policy agree",
  UNSUPPORTED_QUERY: "the query has a construct the policy cannot prove safe: create a collaboration with a plainer query",
  WINDOW_FUNCTION: "window functions are refused: create a collaboration without one",
  IDENTITY_NOT_FOUND: "a table lacks the policy's identity column: qualify it or add it, in a new collaboration",
  QUERY_PARSE_FAILED: "the approved SQL does not parse: create a new collaboration with valid SQL",
  QUERY_FAILED: "the query failed while it ran (for example a cast of a value): fix the data or the query",
  DP_UNSUPPORTED: "the query uses what the DP policy cannot noise: create a collaboration whose query DP supports",
  POLICY_INVALID: "the output policy is not valid: create a new collaboration with a valid policy",
  CONNECTOR_UNREACHABLE: "the party's data source cannot be reached from its node: start it or fix its address, then assign the node again",
  CONNECTOR_FILE_NOT_FOUND: "a dataset file is missing on the party's node: put it back where the collaboration file names it",
  CONNECTOR_FILE_CHANGED: "a dataset file changed on the party's node while the run read it: run again once it is settled",
  CONNECTOR_AUTH_FAILED: "the party's data source refused its credentials: fix them and assign the node again",
  CONNECTOR_UNKNOWN_TABLE: "a dataset's table does not exist in the party's database: create it or fix the descriptor",
  CONNECTOR_BAD_DESCRIPTOR: "a dataset descriptor is not valid: fix the collaboration file and assign the node again",
  NET_PIN_MISMATCH: "a server's certificate is not the pinned one: check the pin or the server",
};

/** The fixed advice for a refusal code (the same text for every run and party: no data in it). */
export function refusalAdvice(code: string): string {
  return ADVICE[code] ?? "that node's host.log (collab-run-failed) says more";
}

