/**
 * The real enclave process (src/enclave/main.ts) shares its IPC channel
 * between the call gate and the relay: relay frames never reach the gate
 * (no BAD_REQUEST for them) and the gate keeps working beside them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { startEnclave } from "../../../src/enclave/client.ts";
import type { HostRelayFrame, RelayEndpoint } from "../../../src/enclave/net/frames.ts";
import { tempDir } from "../task-fixture.ts";

test("relay frames from the host go to the enclave's relay channel, not to the call gate", async () => {
  const root = await tempDir("net-gate");
  const fromEnclave: unknown[] = [];
  let sendToEnclave: ((frame: HostRelayFrame) => void) | undefined;
  const relay: RelayEndpoint = {
    attach: (send) => {
      sendToEnclave = send;
      return { receive: () => {}, close: () => {} };
    },
  };
  const enclave = await startEnclave({
    dataDir: join(root, "data"),
    attestation: { provider: "sim", pkiDir: join(root, "platform") },
    relay,
    onFrame: (direction, frame) => direction === "from-enclave" && fromEnclave.push(frame),
  });
  try {
    assert.ok(sendToEnclave, "startEnclave attaches the relay");
    // Frames for streams the enclave never opened, one of them malformed: dropped by the relay channel.
    sendToEnclave({ net: "opened", stream: 7 });
    sendToEnclave({ net: "data", stream: 7, bytes: new Uint8Array([1, 2, 3]) });
    sendToEnclave({ net: "closed", stream: 7, error: "x" });
    const again = await enclave.init();
    assert.equal(again.signer, enclave.identity.signer);
    assert.deepEqual(
      fromEnclave.filter((f) => (f as { error?: unknown }).error !== undefined),
      [],
      "the gate must not answer relay frames",
    );
  } finally {
    await enclave.close();
    await rm(root, { recursive: true, force: true });
  }
});
