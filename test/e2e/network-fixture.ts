/** A shared embedded network for end-to-end tests, with every host event and call-gate frame recorded. */
import type { FrameDirection } from "../../src/enclave/client.ts";
import { startEmbeddedNetwork, type EmbeddedNetwork } from "../../src/devnet/embedded.ts";
import type { HostEvent } from "../../src/host/log.ts";

export interface RecordedNetwork {
  network: EmbeddedNetwork;
  events: HostEvent[];
  frames: { node: number; direction: FrameDirection; frame: unknown }[];
  /** Resolves with the first host event (past or future) that matches. */
  waitForEvent(match: (e: HostEvent) => boolean, timeoutMs?: number): Promise<HostEvent>;
}

export async function startRecordedNetwork(nodes = 1): Promise<RecordedNetwork> {
  const events: HostEvent[] = [];
  const frames: RecordedNetwork["frames"] = [];
  const network = await startEmbeddedNetwork({
    nodes,
    onHostEvent: (_node, event) => events.push(event),
    onFrame: (node, direction, frame) => frames.push({ node, direction, frame }),
  });
  return {
    network,
    events,
    frames,
    async waitForEvent(match, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = events.find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching host event within ${timeoutMs} ms; events: ${JSON.stringify(events.slice(-5))}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}
