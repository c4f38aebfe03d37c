/** The one EIP-712 job anchor: typed data any EIP-712 verifier checks, with inputs and outputs as order-independent digest sets. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { recoverTypedDataAddress, sha256 } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { anchorDigest, anchorDomain, anchorTypes, digestSet, type JobAnchor } from "../../src/protocol/anchor.ts";

const d = (n: number) => sha256(new Uint8Array([n]));
const domain = anchorDomain("Cloister CleanRoom", 31337n, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const anchor: JobAnchor = {
  kind: "task",
  jobId: 42n,
  approvedDigest: d(1),
  inputDigest: digestSet([{ name: "a", digest: d(2) }, { name: "b", digest: d(3) }]),
  outputDigest: digestSet([{ name: "result", digest: d(4) }]),
  provenanceDigest: d(5),
};

test("an enclave's signature over the anchor recovers to its address through standard EIP-712", async () => {
  const enclave = privateKeyToAccount(generatePrivateKey());
  const signature = await enclave.sign({ hash: anchorDigest(domain, anchor) });
  assert.equal(signature, await enclave.signTypedData({ domain, types: anchorTypes, primaryType: "JobAnchor", message: anchor }), "same bytes as signTypedData");
  assert.equal(await recoverTypedDataAddress({ domain, types: anchorTypes, primaryType: "JobAnchor", message: anchor, signature }), enclave.address);
  const other = await recoverTypedDataAddress({ domain, types: anchorTypes, primaryType: "JobAnchor", message: { ...anchor, jobId: 43n }, signature });
  assert.notEqual(other, enclave.address, "another job id is another message");
  assert.notEqual(anchorDigest(anchorDomain("Cloister Vault", 31337n, domain.verifyingContract), anchor), anchorDigest(domain, anchor), "another contract's domain");
});

test("a digest set binds names and digests, not their order, and refuses a name twice", () => {
  const ab = digestSet([{ name: "a", digest: d(2) }, { name: "b", digest: d(3) }]);
  assert.equal(digestSet([{ name: "b", digest: d(3) }, { name: "a", digest: d(2) }]), ab);
  assert.notEqual(digestSet([{ name: "a", digest: d(3) }, { name: "b", digest: d(2) }]), ab);
  assert.notEqual(digestSet([{ name: "a", digest: d(2) }]), ab);
  assert.notEqual(digestSet([{ name: "a", digest: d(2) }]), d(2), "one entry is still domain-separated from its digest");
  assert.throws(() => digestSet([{ name: "a", digest: d(2) }, { name: "a", digest: d(3) }]), /twice/);
});
