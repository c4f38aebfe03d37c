/**
 * The relay port of the enclave process: relay frames share the IPC channel
 * with the call gate (main.ts passes every `{ net: ... }` frame here and
 * never to the gate).
 */
import type { RelayPort } from "./channel.ts";
import { isRelayFrame } from "./frames.ts";

export function processRelayPort(): RelayPort {
  return {
    send: (frame) => void process.send?.(frame),
    onFrame: (listener) => {
      process.on("message", (raw: unknown) => {
        if (isRelayFrame(raw)) listener(raw);
      });
    },
  };
}
