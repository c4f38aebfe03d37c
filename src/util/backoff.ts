/**
 * The wait before retry number `attempt` (1-based): base·2^(attempt-1), capped
 * at maxMs, with its upper half jittered so that many nodes retrying at once
 * spread out while each node's delays still grow. Shared by the host's retries
 * (host/retry.ts) and the chain follower's backoff (chain/follower.ts).
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
