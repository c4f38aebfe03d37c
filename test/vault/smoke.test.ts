import { test } from "node:test";
import assert from "node:assert/strict";
import { retrieveVaultSecret, storeVaultSecret } from "../../src/sdk/vault.ts";
import { startVaultTestNet } from "./fixture.ts";

test("smoke: store and get with one cluster of 3", async () => {
  const t = await startVaultTestNet({ clusters: 1, size: 3 });
  try {
    const secret = new TextEncoder().encode("smoke secret");
    const stored = await storeVaultSecret(t.ctx, t.owner, secret, { threshold: 2, shares: 3 }).catch((e) => {
      console.log(JSON.stringify(e.details), t.events);
      throw e;
    });
    const got = await retrieveVaultSecret(t.ctx, t.chain.accounts.requester, stored.tokenId).catch((e) => {
      console.log(JSON.stringify(e.details));
      throw e;
    });
    assert.deepEqual(got, secret);
  } finally {
    await t.close();
  }
});
