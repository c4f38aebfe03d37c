/**
 * `cloister attest verify <certificate>` through the real CLI: the Intel SGX
 * SDK's RA-TLS certificate (key bound, no collateral), a tampered copy (key
 * not bound), the simulated enclave's own certificate under the devnet's
 * policy (verified in full, from the collateral it carries or a file), and an
 * ordinary certificate (unusable input).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createAttestedCertificate } from "../../src/attestation/atls/certificate.ts";
import { certificateDer, readAttestedCertificate } from "../../src/attestation/atls/reader.ts";
import { SimulatedProvider } from "../../src/attestation/sim/provider.ts";
import { localNetworkManifest } from "../../src/devnet/network-policy.ts";
import { bitString, explicit, integer, oid, sequence, set, time, utf8String } from "../attestation/der-build.ts";

const cli = fileURLToPath(new URL("../../bin/cloister.js", import.meta.url));
const intelPem = fileURLToPath(new URL("../../../shared/testdata/atls/intel-sgxsdk-cert.pem", import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

interface CertificateJson {
  ok: boolean;
  accepted: boolean;
  teeType: string;
  measurement: string | null;
  simulated: boolean;
  reportData: string | null;
  error?: string;
  reasons: string[];
  keyBinding: boolean;
  certificate: { format: string; keyType: string; claims: Record<string, unknown>; nonce: string | null; enclaveSigner: string | null; collateral: string; keyBindingErrors: string[] };
}

async function verifyJson(args: string[]): Promise<{ run: Run; out: CertificateJson }> {
  const run = await runCli(["attest", "verify", ...args, "--json"]);
  const lines = run.stdout.trim().split("\n");
  assert.equal(lines.length, 1, `--json prints one line; exit ${run.code}, stderr: ${run.stderr}`);
  return { run, out: JSON.parse(lines[0]!) as CertificateJson };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cloister-attest-cert-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("attest verify <certificate>: the Intel SGX SDK's RA-TLS certificate", () => {
  test("is read from PEM: key bound, evidence not verifiable without collateral (exit 1)", async () => {
    const { run, out } = await verifyJson([intelPem]);
    assert.equal(run.code, 1);
    assert.equal(out.keyBinding, true);
    assert.deepEqual(out.certificate.keyBindingErrors, []);
    assert.equal(out.certificate.format, "tcg-dice");
    assert.equal(out.certificate.keyType, "ec secp384r1");
    assert.deepEqual(Object.keys(out.certificate.claims), ["pubkey-hash"]);
    assert.equal(out.certificate.collateral, "none");
    assert.equal(out.teeType, "SGX");
    assert.equal(out.ok, false);
    assert.match(out.error ?? "", /^COLLATERAL_MISSING: /);
  });

  test("a copy with one claims byte flipped (DER file): key NOT bound, with the reasons, in JSON and text", async () => {
    const der = certificateDer(await readFile(intelPem));
    const claims = readAttestedCertificate(der).claimsBuffer!;
    const tampered = Uint8Array.from(der);
    tampered[Buffer.from(der).indexOf(Buffer.from(claims)) + claims.length - 1]! ^= 0x80;
    const file = join(dir, "tampered.der");
    await writeFile(file, tampered);
    const { run, out } = await verifyJson([file]);
    assert.equal(run.code, 1);
    assert.equal(out.keyBinding, false);
    assert.equal(out.certificate.keyBindingErrors.length, 2);
    assert.match(out.certificate.keyBindingErrors.join("\n"), /pubkey-hash .* another key/);
    const text = await runCli(["attest", "verify", file]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /KEY NOT BOUND/);
    assert.match(text.stdout, /key binding {4}NO/);
  });
});

describe("attest verify <certificate>: the simulated enclave's own certificate", () => {
  let files: { pem: string; der: string; policy: string; collateral: string };
  let measurement: string;
  const signer = `0x${"5c".repeat(20)}`;

  before(async () => {
    const pkiDir = join(dir, "sim-pki");
    // The devnet's policy: its simulated root and this checkout's enclave measurement, in the devnet's policy-file shape.
    ({ measurement } = await localNetworkManifest(pkiDir));
    const cert = await createAttestedCertificate({ provider: new SimulatedProvider({ pkiDir, mrEnclave: measurement }), freshness: new Uint8Array(32).fill(9), signer });
    assert.ok(cert.evidence.teeType === "SGX" && cert.evidence.collateral);
    files = { pem: join(dir, "sim.pem"), der: join(dir, "sim.der"), policy: join(dir, "devnet-policy.json"), collateral: join(dir, "sim-collateral.json") };
    await writeFile(files.pem, cert.certPem);
    await writeFile(files.der, cert.certDer);
    await writeFile(files.collateral, JSON.stringify(cert.evidence.collateral));
    const rootPem = await readFile(join(pkiDir, "sim-root-ca.pem"), "utf8");
    await writeFile(files.policy, JSON.stringify({ allowSimulation: true, simulatedRoots: [rootPem], measurements: [measurement] }));
  });

  test("verifies in full under the devnet policy from the collateral it carries (exit 0)", async () => {
    for (const file of [files.pem, files.der]) {
      const { run, out } = await verifyJson([file, "--policy", files.policy]);
      assert.equal(run.code, 0, `${out.error ?? ""} ${out.reasons.join("; ")}`);
      assert.equal(out.ok, true);
      assert.equal(out.accepted, true);
      assert.equal(out.keyBinding, true);
      assert.equal(out.simulated, true);
      assert.equal(out.measurement, measurement);
      assert.equal(out.certificate.collateral, "certificate");
      assert.equal(out.certificate.nonce, "09".repeat(32));
      assert.equal(out.certificate.enclaveSigner, signer);
    }
  });

  test("verifies with --collateral from a file, and says so in text", async () => {
    const { run, out } = await verifyJson([files.pem, "--policy", files.policy, "--collateral", files.collateral]);
    assert.equal(run.code, 0);
    assert.equal(out.certificate.collateral, "flags");
    const text = await runCli(["attest", "verify", files.pem, "--policy", files.policy]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^\[SIMULATED TEE\] AUTHENTIC and ACCEPTED by the policy\n/);
    assert.match(text.stdout, /key binding {4}yes/);
    assert.match(text.stdout, /claim {10}cloister-signer = (5c){20}\n/);
  });

  test("is refused by the production policy (exit 1) though its key is bound", async () => {
    const { run, out } = await verifyJson([files.pem]);
    assert.equal(run.code, 1);
    assert.equal(out.keyBinding, true);
    assert.equal(out.ok, false);
    assert.match(out.error ?? "", /^UNTRUSTED_ROOT: /);
  });
});

test("attest verify <certificate> on an ordinary certificate: unusable input (exit 2), saying it carries no evidence", async () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const alg = sequence(oid("1.2.840.10045.4.3.2"));
  const name = sequence(set(sequence(oid("2.5.4.3"), utf8String("plain"))));
  const tbs = sequence(explicit(0, integer(Uint8Array.of(2))), integer(Uint8Array.of(7)), alg, name,
    sequence(time(new Date(Date.now() - 60_000)), time(new Date(Date.now() + 3_600_000))), name, new Uint8Array(publicKey.export({ type: "spki", format: "der" })));
  const file = join(dir, "plain.der");
  await writeFile(file, sequence(tbs, alg, bitString(sign("sha256", tbs, privateKey))));
  const run = await runCli(["attest", "verify", file]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /carries no evidence extension/);
});
