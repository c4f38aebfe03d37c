import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readDeployment, writeDeployment } from "../../src/chain/deployment-file.ts";

test("a deployment file round-trips, a missing one reads as none, and a wrong one names its field", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-deployment-"));
  try {
    const path = join(dir, "deployment.json");
    assert.equal(await readDeployment(path), undefined);
    const deployment = { chainId: 31337, registry: `0x${"11".repeat(20)}`, market: `0x${"22".repeat(20)}`, deployBlock: 4n } as const;
    await writeDeployment(path, deployment);
    assert.deepEqual(await readDeployment(path), deployment);
    await writeFile(path, JSON.stringify({ chainId: 31337, registry: "0x12", market: deployment.market, deployBlock: "4" }));
    await assert.rejects(readDeployment(path), { code: "DEPLOYMENT_INVALID", message: /registry must be a 0x-prefixed 20-byte address/ });
    await writeFile(path, "{");
    await assert.rejects(readDeployment(path), { code: "DEPLOYMENT_INVALID", message: /is not JSON/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a deployment file keeps the vault's address, and one written before the vault existed still reads (without it)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-deployment-"));
  try {
    const path = join(dir, "deployment.json");
    const withVault = { chainId: 31337, registry: `0x${"11".repeat(20)}`, market: `0x${"22".repeat(20)}`, vault: `0x${"33".repeat(20)}`, deployBlock: 4n } as const;
    await writeDeployment(path, withVault);
    assert.deepEqual(await readDeployment(path), withVault);
    await writeFile(path, JSON.stringify({ chainId: 31337, registry: withVault.registry, market: withVault.market, deployBlock: "4" }));
    const old = await readDeployment(path);
    assert.equal(old?.vault, undefined);
    assert.equal(old?.market, withVault.market);
    await writeFile(path, JSON.stringify({ chainId: 31337, registry: withVault.registry, market: withVault.market, vault: "0x33", deployBlock: "4" }));
    await assert.rejects(readDeployment(path), { code: "DEPLOYMENT_INVALID", message: /vault/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
