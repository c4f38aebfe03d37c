import { test } from "node:test";
import assert from "node:assert/strict";
import { getAddress, keccak256, toHex } from "viem";
import { generateHpkeKeyPair } from "../../src/crypto/hpke.ts";
import { sha256 } from "../../src/crypto/sha256.ts";
import {
  MAX_PACKAGE_BYTES,
  openCursor,
  openSpec,
  parsePackage,
  pipelineRunId,
  sealCursor,
  sealPipeline,
  unwrapPipelineKey,
  type PipelineSpec,
} from "../../src/protocol/pipeline-package.ts";
import { rawCidOfDigest } from "../../src/storage/raw-cid.ts";
import { cidOfBytes } from "../../src/storage/unixfs-profile.ts";

const spec: PipelineSpec = {
  name: "p",
  source: { type: "postgres", url: "postgres://u:SECRETPW@db:5432/x", table: "orders", cursor: "id" },
  transform: { kind: "sql", sql: "SELECT secret_column FROM source" },
  destination: { type: "postgres", url: "postgres://u:SECRETPW@db:5432/x", table: "totals", mode: "append" },
  schedule: "*/5 * * * *",
};
const binding = { chainId: 31337n, contract: getAddress(`0x${"11".repeat(20)}`), pipelineId: 42n, owner: getAddress(`0x${"22".repeat(20)}`) };

test("a sealed package hides the spec, opens for each candidate, and its CID follows from its digest", async () => {
  const a = await generateHpkeKeyPair();
  const b = await generateHpkeKeyPair();
  const enclaves = [
    { enclave: getAddress(`0x${"aa".repeat(20)}`), hpkePublicKey: toHex(a.publicKey) },
    { enclave: getAddress(`0x${"bb".repeat(20)}`), hpkePublicKey: toHex(b.publicKey) },
  ];
  const bytes = await sealPipeline(spec, binding, enclaves);
  const text = new TextDecoder().decode(bytes);
  for (const secret of ["SECRETPW", "orders", "secret_column", "totals"]) assert.equal(text.includes(secret), false, `${secret} in the package`);
  const pkg = parsePackage(bytes);
  assert.deepEqual(pkg.public.destination, { type: "postgres", mode: "append" });
  assert.equal(pkg.public.cursor, true);
  for (const [i, kp] of [a, b].entries()) {
    const key = await unwrapPipelineKey(pkg, pkg.wrappedKeys[i]!, kp.privateKey);
    assert.deepEqual(openSpec(pkg, key), spec);
  }
  await assert.rejects(unwrapPipelineKey(pkg, pkg.wrappedKeys[0]!, b.privateKey), "another enclave's key does not open it");
  await assert.rejects(unwrapPipelineKey({ ...pkg, pipelineId: "43" }, pkg.wrappedKeys[0]!, a.privateKey), "nor for another pipeline id");
  assert.equal(rawCidOfDigest(sha256(bytes)), String(await cidOfBytes(bytes)));
});

test("cursor state opens only with the pipeline's key and binding; the run id is a function of the cursor", async () => {
  const key = new Uint8Array(32).fill(7);
  const sealed = sealCursor(key, binding, { pipelineId: "42", run: 3, cursor: "1000" });
  assert.deepEqual(openCursor(key, binding, sealed), { pipelineId: "42", run: 3, cursor: "1000" });
  assert.throws(() => openCursor(new Uint8Array(32).fill(8), binding, sealed));
  assert.throws(() => openCursor(key, { ...binding, pipelineId: 43n }, sealed));
  const c = keccak256("0x01");
  assert.equal(pipelineRunId(42n, c), pipelineRunId(42n, c));
  assert.notEqual(pipelineRunId(42n, c), pipelineRunId(43n, c));
  assert.notEqual(pipelineRunId(42n, c), pipelineRunId(42n, keccak256("0x02")));
});

test("a package larger than one IPFS chunk is refused", async () => {
  const kp = await generateHpkeKeyPair();
  const big = { ...spec, transform: { kind: "program" as const, name: "big.js", source: "x".repeat(MAX_PACKAGE_BYTES) } };
  await assert.rejects(sealPipeline(big, binding, [{ enclave: getAddress(`0x${"aa".repeat(20)}`), hpkePublicKey: toHex(kp.publicKey) }]), /more than 262144/);
});
