import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePolicyText, policyJsonSchema, starterPolicyText } from "../../src/attestation/policy.ts";

test("the policy JSON Schema describes every field and refuses unknown ones, like parsePolicy", () => {
  const schema = policyJsonSchema() as { type: string; additionalProperties: unknown; properties: Record<string, { items?: { enum?: string[] } }> };
  assert.equal(schema.type, "object");
  assert.equal(schema.additionalProperties, false);
  const starterFields = Object.keys(JSON.parse(JSON.stringify(parsePolicyText(starterPolicyText()))) as object);
  for (const field of starterFields) assert.ok(field in schema.properties, `schema lacks ${field}`);
  assert.deepEqual(schema.properties.acceptedTcbStatuses?.items?.enum?.includes("UpToDate"), true);
  assert.throws(() => parsePolicyText('{"acceptedTcbStatuses": ["Great"]}'), /policy\.acceptedTcbStatuses\[0\]/);
});
