/** The public share set descriptor on the wire: strict parsing, JSON round trip, still checked against the root. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseShareSetDescriptor, shareSetDescriptorJson } from "../../src/protocol/vault-descriptor.ts";
import { checkDescriptor, splitSecret } from "../../src/protocol/vault-shares.ts";
import { binding, canary, contains, rejectsWith } from "./vault-fixtures.ts";

const set = await splitSecret(binding, canary, { threshold: 3, shareCount: 5 });

test("a descriptor survives JSON and still matches its root", () => {
  const wire = JSON.stringify(shareSetDescriptorJson(set.descriptor));
  assert.ok(!contains(wire, canary));
  const parsed = parseShareSetDescriptor(JSON.parse(wire));
  assert.deepEqual(parsed, set.descriptor);
  checkDescriptor(parsed, set.root);
  assert.deepEqual(parseShareSetDescriptor(set.descriptor), set.descriptor, "bigints as they are");
});

test("a malformed descriptor is INVALID_ARGUMENT before anything hashes it; a well-formed doctored one is ROOT_MISMATCH", async () => {
  const json = shareSetDescriptorJson(set.descriptor);
  const bad: unknown[] = [
    null,
    { ...json, version: "0" },
    { ...json, version: "-1" },
    { ...json, threshold: 6 },
    { ...json, threshold: 1 },
    { ...json, shareCount: 256 },
    { ...json, shareCommitments: json.shareCommitments.slice(1) },
    { ...json, secretCommitment: "0x12" },
    { ...json, binding: { ...json.binding, vault: "0x1234" } },
    { ...json, binding: { ...json.binding, tokenId: "1e3" } },
    [],
    { ...json, threshold: 2.5 },
    { ...json, binding: { ...json.binding, chainId: 31337 } },
    { ...json, binding: { ...json.binding, tokenId: (2n ** 256n).toString() } },
    { ...json, version: (2n ** 64n).toString() },
    { ...json, shareCommitments: [...json.shareCommitments.slice(1), "0x12"] },
    { ...json, binding: undefined },
  ];
  for (const b of bad) await rejectsWith(() => parseShareSetDescriptor(b), "INVALID_ARGUMENT");
  assert.throws(() => parseShareSetDescriptor({ ...json, binding: { ...json.binding, tokenId: "1e3" } }), /binding\.tokenId is not a decimal integer/, "the message names the field");
  assert.throws(() => parseShareSetDescriptor({ ...json, shareCommitments: [...json.shareCommitments.slice(1), "0x12"] }), /shareCommitments\[4\]/);
  const doctored = parseShareSetDescriptor({ ...json, threshold: 2 });
  await rejectsWith(() => checkDescriptor(doctored, set.root), "ROOT_MISMATCH");
});
