import { CleanRoomPolicyError } from "./errors.ts";
import type { DpPolicy } from "./policy.ts";
import { add, compare, div, fromDecimal, rational, toNumber } from "./rational.ts";
import type { Rational } from "./rational.ts";

/**
 * Epsilon accounting for one collaboration. A run spends exactly the policy's
 * per-run epsilon, split evenly over the noised quantities of that run (each
 * noised aggregate column plus the noised group-size count the threshold
 * reads); by sequential composition the run is epsilon-DP at the row level,
 * and k runs spend k * epsilon of the budget. Amounts are exact rationals of
 * the decimals the policy writes.
 */

export interface EpsilonCharge {
  /** Epsilon this run spends. */
  readonly spent: number;
  /** Epsilon spent by all runs including this one. */
  readonly totalAfter: number;
  /** The share each noised quantity gets. */
  readonly perQuantity: Rational;
}

export function chargeEpsilon(dp: DpPolicy, spentBefore: number, noisedQuantities: number): EpsilonCharge {
  if (!Number.isInteger(noisedQuantities) || noisedQuantities < 1) throw new RangeError("a DP run noises at least one quantity");
  const epsilon = fromDecimal(dp.epsilon);
  const after = add(fromDecimal(spentBefore), epsilon);
  if (compare(after, fromDecimal(dp.budget)) > 0) {
    throw new CleanRoomPolicyError(
      "DP_BUDGET_EXCEEDED",
      `this run would spend epsilon ${dp.epsilon} with ${spentBefore} of the budget ${dp.budget} already spent: the collaboration's privacy budget is exhausted`,
      { details: { rule: "dp budget", epsilon: dp.epsilon, spentBefore, budget: dp.budget } },
    );
  }
  return { spent: dp.epsilon, totalAfter: toNumber(after), perQuantity: div(epsilon, rational(BigInt(noisedQuantities))) };
}

/** The discrete Laplace scale sensitivity / epsilonShare for an integer sensitivity. */
export function noiseScale(sensitivity: bigint, epsilonShare: Rational): Rational {
  return div(rational(sensitivity), epsilonShare);
}
