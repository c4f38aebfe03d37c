import { CloisterError } from "../../util/base-error.ts";

/**
 * Why the clean room's output policy refused a query or a run. `details.rule`
 * names the rule and `details.column` the offending output column where there
 * is one; both are safe to publish (they come from the approved SQL text and
 * the policy, never from the data).
 */
export type CleanRoomPolicyErrorCode =
  | "POLICY_INVALID"
  | "QUERY_PARSE_FAILED"
  | "UNSUPPORTED_QUERY"
  | "ROW_LEVEL_OUTPUT"
  | "AGGREGATE_NOT_ALLOWED"
  | "WINDOW_FUNCTION"
  | "IDENTITY_NOT_FOUND"
  | "QUERY_FAILED"
  | "DP_UNSUPPORTED"
  | "DP_BUDGET_EXCEEDED";

export class CleanRoomPolicyError extends CloisterError<CleanRoomPolicyErrorCode> {}
