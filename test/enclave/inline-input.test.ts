/**
 * Inline inputs: a small encrypted input travels inside the task envelope.
 * The envelope's shape is checked strictly, and the enclave decrypts only
 * bytes whose SHA-256 is the spec's input digest and the inline bytes' own.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sha256 } from "viem";
import { startEnclave, type EnclaveClient } from "../../src/enclave/client.ts";
import { decryptResult } from "../../src/protocol/result.ts";
import { maxInlineInputBytes, parseTaskEnvelope, TaskEnvelopeError } from "../../src/protocol/task.ts";
import { bindingFor, makeTask, rejectsWith, runTask, tempDir, withDigests } from "./task-fixture.ts";

const ECHO = "export default function (input) { return input; }";
const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
let root: string;
let enclave: EnclaveClient;

before(async () => {
  root = await tempDir("inline-input");
  enclave = await startEnclave({ dataDir: join(root, "data"), attestation: { provider: "sim", pkiDir: join(root, "platform") } });
});

after(async () => {
  await enclave?.close();
  await rm(root, { recursive: true, force: true });
});

describe("inline input in the enclave", () => {
  test("a task whose input is inline runs, and its result decrypts to the input", async () => {
    const binding = bindingFor(2001n);
    const input = new TextEncoder().encode("inline rows");
    const { params, requester, envelope } = await makeTask(enclave.identity, { binding, program: ECHO, input, inline: true });
    assert.ok("inline" in envelope.input && !("cid" in envelope.input));
    const out = await runTask(enclave, params);
    const record = await decryptResult(requester.privateKey, binding, out.result);
    assert.ok(record.outcome === "ok");
    assert.deepEqual(record.output, input);
  });

  test("inline bytes that do not hash to the envelope's digest are refused with INPUT_DIGEST_MISMATCH", async () => {
    const { params } = await makeTask(enclave.identity, {
      binding: bindingFor(2002n),
      program: ECHO,
      input: new Uint8Array(10),
      rawInputRef: (encrypted, digest) => ({ inline: base64(encrypted.subarray(1)), digest }),
    });
    // The host relays the bytes the spec names: only the inline ones disagree.
    await rejectsWith(runTask(enclave, params), "INPUT_DIGEST_MISMATCH", /inline input/);
  });

  test("the host cannot substitute other bytes for the inline input", async () => {
    const { params } = await makeTask(enclave.identity, { binding: bindingFor(2003n), program: ECHO, input: new Uint8Array(10), inline: true });
    const other = params.input.slice();
    other[other.length - 1]! ^= 1;
    await rejectsWith(runTask(enclave, { ...params, input: other }), "INPUT_DIGEST_MISMATCH");
    // Even with a spec naming the other bytes, the envelope (whose digest the spec names) disagrees.
    const forged = withDigests(params, { input: other });
    await rejectsWith(runTask(enclave, { ...forged, spec: { ...forged.spec, envelopeDigest: params.spec.envelopeDigest } }), "TASK_MISMATCH");
  });

  test("an envelope input with both cid and inline, or neither, is refused with MALFORMED_ENVELOPE", async () => {
    const both = await makeTask(enclave.identity, {
      binding: bindingFor(2004n),
      program: ECHO,
      input: new Uint8Array(10),
      rawInputRef: (encrypted, digest) => ({ cid: "bafy-input", inline: base64(encrypted), digest }),
    });
    await rejectsWith(runTask(enclave, both.params), "MALFORMED_ENVELOPE", /exactly one of cid and inline/);
    const neither = await makeTask(enclave.identity, { binding: bindingFor(2005n), program: ECHO, input: new Uint8Array(10), rawInputRef: (_, digest) => ({ digest }) });
    await rejectsWith(runTask(enclave, neither.params), "MALFORMED_ENVELOPE", /exactly one of cid and inline/);
  });

  test("inline text that is not standard base64 is refused with MALFORMED_ENVELOPE", async () => {
    const { params } = await makeTask(enclave.identity, {
      binding: bindingFor(2006n),
      program: ECHO,
      input: new Uint8Array(10),
      rawInputRef: (encrypted, digest) => ({ inline: `${base64(encrypted)}\n`, digest }),
    });
    await rejectsWith(runTask(enclave, params), "MALFORMED_ENVELOPE", /input\.inline.*base64/);
  });
});

describe("parseTaskEnvelope", () => {
  const digest = sha256(new Uint8Array(1));
  const envelopeWith = (input: unknown) =>
    new TextEncoder().encode(
      JSON.stringify({
        version: 1,
        taskId: "1",
        program: { cid: "bafy-program", digest },
        input,
        resultKey: `0x${"11".repeat(32)}`,
        wrappedKeys: [],
        limits: { memoryMb: 64, timeoutMs: 1000, maxOutputBytes: 1024 },
      }),
    );
  const refuses = (input: unknown, match: RegExp) =>
    assert.throws(() => parseTaskEnvelope(envelopeWith(input)), (e: unknown) => e instanceof TaskEnvelopeError && e.code === "MALFORMED_ENVELOPE" && match.test(e.message));

  test("accepts a CID input and an inline input of exactly the limit", () => {
    assert.deepEqual(parseTaskEnvelope(envelopeWith({ cid: "bafy-input", digest })).input, { cid: "bafy-input", digest });
    const atLimit = base64(new Uint8Array(maxInlineInputBytes));
    assert.deepEqual(parseTaskEnvelope(envelopeWith({ inline: atLimit, digest })).input, { inline: atLimit, digest });
  });

  test("refuses an inline input one byte over the limit", () => {
    refuses({ inline: base64(new Uint8Array(maxInlineInputBytes + 1)), digest }, /input\.inline: must encode at most 16384 bytes/);
  });

  test("refuses unpadded, URL-safe, non-canonical and empty base64", () => {
    refuses({ inline: "QQ", digest }, /input\.inline.*base64/);
    refuses({ inline: "-_-_", digest }, /input\.inline.*base64/);
    refuses({ inline: "QR==", digest }, /input\.inline.*base64/);
    refuses({ inline: "", digest }, /input\.inline/);
  });

  test("refuses unknown keys in the input and a missing digest", () => {
    refuses({ cid: "bafy-input", digest, url: "https://example.org" }, /input/);
    refuses({ inline: "AAAA" }, /input\.digest/);
  });

  test("refuses bytes that are not UTF-8 JSON", () => {
    assert.throws(() => parseTaskEnvelope(new Uint8Array([0xff, 0xfe])), (e: unknown) => e instanceof TaskEnvelopeError && /not UTF-8 JSON/.test(e.message));
  });
});
