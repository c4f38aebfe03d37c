/** The attestation service's HTTP API and client, over a stub service: results, typed refusals, and failures. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Hex } from "viem";
import { CasError } from "../../src/cas/errors.ts";
import { casHttpClient, CasHttpError } from "../../src/cas/http-client.ts";
import { CasHttpServerError, startCasHttpServer } from "../../src/cas/http-server.ts";
import type { Registration, RegistrationRequest } from "../../src/cas/service.ts";

const nonce = `0x${"ab".repeat(32)}` as Hex;
const request: RegistrationRequest = {
  signer: `0x${"11".repeat(20)}`,
  hpkePublicKey: `0x${"22".repeat(32)}`,
  provenanceKey: `0x${"66".repeat(91)}`,
  tlsKey: `0x${"77".repeat(91)}`,
  operator: `0x${"33".repeat(20)}`,
  evidenceCid: "bafkreibi7wwob5ifivsztx2aq57r3ve4gifacxlixus3ddnxs3nq7wnxha",
  nonce,
};
const deployment = { chainId: 31337, registry: `0x${"44".repeat(20)}`, market: `0x${"55".repeat(20)}`, deployBlock: 7n } as const;

function stubService(register: (r: RegistrationRequest) => Promise<Registration>) {
  return { challenge: () => nonce, register };
}

test("challenge, register and deployment round-trip; registrations run one at a time", async (t) => {
  const seen: RegistrationRequest[] = [];
  let running = 0;
  let overlapped = false;
  const server = await startCasHttpServer({
    deployment,
    service: stubService(async (r) => {
      overlapped ||= running > 0;
      running++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      running--;
      seen.push(r);
      return { signer: r.signer, claims: { teeType: "SGX", simulated: true, measurement: "aa" } as Registration["claims"], expiry: 1_800_000_000n, transactionHash: `0x${"66".repeat(32)}` };
    }),
  });
  t.after(() => server.close());
  const client = casHttpClient(server.url);
  assert.equal(await client.challenge(), nonce);
  const results = await Promise.all([client.register(request), client.register({ ...request, operator: `0x${"77".repeat(20)}` })]);
  assert.deepEqual(results[0], { expiry: 1_800_000_000n, transactionHash: `0x${"66".repeat(32)}` });
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[0], request);
  assert.equal(overlapped, false);
  const published = await client.deployment();
  assert.equal(published.chainId, 31337);
  assert.equal(published.deployBlock, 7n);
  assert.equal(published.market.toLowerCase(), deployment.market);
});

test("refusals come back as CasError, malformed requests and failures as CasHttpError", async (t) => {
  const server = await startCasHttpServer({
    service: stubService(async (r) => {
      if (r.evidenceCid === "boom") throw new Error("the chain is down");
      throw new CasError("EVIDENCE_REFUSED", "evidence refused: debug enclave", ["debug enclave"]);
    }),
  });
  t.after(() => server.close());
  const client = casHttpClient(server.url);
  await assert.rejects(client.register(request), (e) => e instanceof CasError && e.code === "EVIDENCE_REFUSED" && e.reasons[0] === "debug enclave");
  await assert.rejects(client.register({ ...request, evidenceCid: "boom" }), (e) => e instanceof CasHttpError && e.code === "CAS_FAILED" && /chain is down/.test(e.message));
  await assert.rejects(client.register({ ...request, nonce: "0x12" }), (e) => e instanceof CasHttpError && e.code === "CAS_FAILED" && /nonce/.test(e.message));
  await assert.rejects(client.deployment(), (e) => e instanceof CasHttpError && /does not publish a deployment/.test(e.message));
  const crossSite = await fetch(`${server.url}/challenge`, { method: "POST", headers: { origin: "https://evil.example" } });
  assert.equal(crossSite.status, 403);
  await server.close();
  await assert.rejects(client.challenge(), (e) => e instanceof CasHttpError && e.code === "CAS_UNREACHABLE");
});

test("the attestation service's HTTP API refuses to bind beyond loopback", async () => {
  await assert.rejects(startCasHttpServer({ service: stubService(async () => { throw new Error("unused"); }), host: "0.0.0.0" }), (e) => e instanceof CasHttpServerError);
});
