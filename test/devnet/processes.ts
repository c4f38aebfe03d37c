/** Process checks for the devnet tests. */
import assert from "node:assert/strict";

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits briefly for every pid to be gone (reaped), then asserts it. */
export async function waitUntilGone(pids: number[], timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(pids.filter(isAlive), [], "no devnet process is left running");
}
