/** Collateral from files and from a PCS v4 API served by a local node:http server (no external network). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fetchCollateral, loadCollateralFile, signedSubstring } from "../../src/attestation/collateral.ts";
import { verifyDcapQuote, AttestationError } from "../../src/attestation/verify.ts";
import { parseCrl } from "../../src/attestation/dcap/crl.ts";
import { VECTORS, caseNamed, intelRoot, vectorBytes, vectorCollateral } from "./dcap-helpers.ts";
import type { DcapCollateral } from "../../src/attestation/types.ts";

interface FakePcs {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

/** Serves one collateral set in Intel PCS v4 response shapes. */
async function fakePcs(collateral: DcapCollateral, tee: "sgx" | "tdx", fmspc: string, ca: string): Promise<FakePcs> {
  const requests: string[] = [];
  const enc = encodeURIComponent;
  const server: Server = createServer((req, res) => {
    requests.push(req.url!);
    const u = new URL(req.url!, "http://x");
    if (u.pathname === `/${tee}/certification/v4/tcb` && u.searchParams.get("fmspc") === fmspc) {
      res.writeHead(200, { "content-type": "application/json", "TCB-Info-Issuer-Chain": enc(collateral.tcb_info_issuer_chain) });
      res.end(`{"tcbInfo":${collateral.tcb_info},"signature":"${collateral.tcb_info_signature}"}`);
    } else if (u.pathname === `/${tee}/certification/v4/qe/identity`) {
      res.writeHead(200, { "content-type": "application/json", "SGX-Enclave-Identity-Issuer-Chain": enc(collateral.qe_identity_issuer_chain) });
      res.end(`{"enclaveIdentity":${collateral.qe_identity},"signature":"${collateral.qe_identity_signature}"}`);
    } else if (u.pathname === "/sgx/certification/v4/pckcrl" && u.searchParams.get("ca") === ca && u.searchParams.get("encoding") === "der") {
      res.writeHead(200, { "content-type": "application/pkix-crl", "SGX-PCK-CRL-Issuer-Chain": enc(collateral.pck_crl_issuer_chain) });
      res.end(Buffer.from(collateral.pck_crl, "hex"));
    } else if (u.pathname === "/sgx/certification/v4/rootcacrl") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(collateral.root_ca_crl); // PCCS serves the root CA CRL as hex text
    } else {
      res.writeHead(404);
      res.end("not found");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address && typeof address === "object");
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

for (const [name, tee, ca] of [["sgx_v3_ok", "sgx", "processor"], ["tdx_v4_ok", "tdx", "platform"]] as const) {
  test(`fetchCollateral (${name}): PCS v4 paths, ${ca} CRL, issuer chains from headers, on-disk cache until nextUpdate`, async () => {
    const c = caseNamed(name);
    const reference = vectorCollateral(c.collateral_file);
    const pcs = await fakePcs(reference, tee, c.expect.fmspc.toUpperCase(), ca);
    const cacheDir = await mkdtemp(join(tmpdir(), "cloister-pccs-"));
    try {
      const quote = vectorBytes(c.quote_file);
      const fetched = await fetchCollateral(quote, { pccsUrl: `${pcs.url}/`, cacheDir, now: c.now_secs });
      assert.deepEqual(fetched, reference);
      assert.equal(pcs.requests.length, 4);
      const claims = await verifyDcapQuote(quote, fetched, { now: c.now_secs, trustedRoots: [intelRoot()] });
      assert.equal(claims.tcbStatus, c.expect.tcb_status);

      // Cached: no request while every piece is before its nextUpdate.
      await fetchCollateral(quote, { pccsUrl: pcs.url, cacheDir, now: c.now_secs + 3600 });
      assert.equal(pcs.requests.length, 4);

      // Past the earliest nextUpdate the cache is stale and the PCCS is asked again.
      const crlNext = parseCrl(new Uint8Array(Buffer.from(reference.pck_crl, "hex")), "PCK CRL").nextUpdate!;
      await fetchCollateral(quote, { pccsUrl: pcs.url, cacheDir, now: crlNext + 1 });
      assert.equal(pcs.requests.length, 8);
    } finally {
      await pcs.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
}

test("fetchCollateral reports an unreachable or failing PCCS as COLLATERAL_FETCH_FAILED", async () => {
  const c = caseNamed("sgx_v3_ok");
  // Serves TDX only: the SGX TCB info request gets a 404.
  const pcs = await fakePcs(vectorCollateral(c.collateral_file), "tdx", c.expect.fmspc.toUpperCase(), "processor");
  try {
    await assert.rejects(
      fetchCollateral(vectorBytes(c.quote_file), { pccsUrl: pcs.url, now: c.now_secs }),
      (e: unknown) => e instanceof AttestationError && e.code === "COLLATERAL_FETCH_FAILED" && /HTTP 404/.test(e.message),
    );
  } finally {
    await pcs.close();
  }
});

test("signedSubstring keeps the exact signed text", () => {
  const body = '{"tcbInfo": {"a":"}\\"{","b":{"c":1}} ,"signature":"ab"}';
  assert.deepEqual(signedSubstring(body, "tcbInfo", "u"), { text: '{"a":"}\\"{","b":{"c":1}}', signature: "ab" });
  assert.throws(() => signedSubstring('{"x":1}', "tcbInfo", "u"), AttestationError);
});

test("loadCollateralFile reads the shared JSON shape and refuses other shapes", async () => {
  const c = await loadCollateralFile(new URL("sgx_v3_collateral.json", VECTORS).pathname);
  assert.deepEqual(c, vectorCollateral("sgx_v3_collateral.json"));
  const dir = await mkdtemp(join(tmpdir(), "cloister-col-"));
  try {
    const bad = join(dir, "bad.json");
    await writeFile(bad, JSON.stringify({ ...c, pck_crl: 5 }));
    await assert.rejects(loadCollateralFile(bad), (e: unknown) => e instanceof AttestationError && /pck_crl must be a string/.test(e.message));
    await writeFile(bad, "{");
    await assert.rejects(loadCollateralFile(bad), (e: unknown) => e instanceof AttestationError && e.code === "COLLATERAL_MALFORMED");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
