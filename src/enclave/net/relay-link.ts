/**
 * The host handle's side of the relay frames (used by client.ts, so it lives
 * with it and imports nothing from src/host): routes the enclave's relay
 * frames, validated, to the host's RelayEndpoint and sends the endpoint's
 * frames to the enclave. Malformed frames from the enclave are dropped.
 */
import type { ChildProcess } from "node:child_process";
import { enclaveRelayFrameSchema, isRelayFrame, type HostRelayFrame, type RelayEndpoint, type RelaySession } from "./frames.ts";

export interface RelayLink {
  /** Handles `raw` if it is a relay frame (true) or leaves it to the call gate (false). */
  route(raw: unknown): boolean;
  /** The enclave is gone. */
  close(): void;
}

export function linkRelay(child: ChildProcess, endpoint: RelayEndpoint | undefined, onFrame?: (direction: "to-enclave", frame: unknown) => void): RelayLink {
  const send = (frame: HostRelayFrame) => {
    onFrame?.("to-enclave", frame);
    if (!child.connected) return;
    try {
      child.send(frame, () => {
        // A failed send means the enclave is gone; the exit handler closes the session.
      });
    } catch {
      // Likewise.
    }
  };
  const session = endpoint ? endpoint.attach(send) : noRelay(send);
  return {
    route(raw) {
      if (!isRelayFrame(raw)) return false;
      const frame = enclaveRelayFrameSchema.safeParse(raw);
      if (frame.success) session.receive(frame.data);
      return true;
    },
    close: () => session.close(),
  };
}

/** A host without a relay answers every open with a refusal, so the enclave fails fast instead of waiting. */
function noRelay(send: (frame: HostRelayFrame) => void): RelaySession {
  return {
    receive: (frame) => {
      if (frame.net === "open") send({ net: "closed", stream: frame.stream, error: "this host offers no network relay" });
      if (frame.net === "listen") send({ net: "listen-failed", listener: frame.listener, reason: "this host offers no network relay" });
    },
    close: () => {},
  };
}
