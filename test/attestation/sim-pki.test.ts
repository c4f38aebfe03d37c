import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { promisify } from "node:util";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dcap from "@phala/dcap-qvl";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import type {
  SimPkiError} from "../../src/attestation/sim/pki.ts";
import {
  addSimPlatform,
  createSimPki,
  issuePckCrl,
  issueRootCaCrl,
  loadOrCreateSimPki,
  pckChainPem,
  revokePckCertificate,
  SIM_CURRENT_PCE_SVN,
  SIM_CURRENT_TCB,
  SIM_FMSPC,
  simRootDer
} from "../../src/attestation/sim/pki.ts";

const SEED = "5a".repeat(32);
// dcap-qvl exports findExtension at runtime but not in its typings.
const findExtension = (dcap.utils as unknown as { findExtension(path: string[], ext: Buffer): Buffer }).findExtension;
const realQuote = await readFile(new URL("../../../shared/testdata/attestation/sgx_v3_quote.bin", import.meta.url));

/** PEM chain embedded in a v3 quote (certification data type 5). */
function chainOfQuote(quote: Uint8Array): Buffer[] {
  return dcap.utils.extractCerts(Buffer.from(dcap.Quote.parse(quote).rawCertChain()));
}

/** Walks the SGX extension: list of [OID, DER tag of value] at the top level and inside TCB. */
function extensionShape(certDer: Buffer): string[] {
  const ext: Buffer = dcap.utils.getIntelExtension(certDer);
  const shape: string[] = [];
  const walk = (seq: Buffer, prefix: string) => {
    let at = seq[1]! & 0x80 ? 2 + (seq[1]! & 0x7f) : 2;
    while (at < seq.length) {
      const len = (b: Buffer, i: number) => (b[i + 1]! & 0x80 ? [2 + (b[i + 1]! & 0x7f), b.readUIntBE(i + 2, b[i + 1]! & 0x7f)] : [2, b[i + 1]!]) as [number, number];
      const [hl, l] = len(seq, at);
      const item = seq.subarray(at + hl, at + hl + l);
      const oidLen = item[1]!;
      const value = item.subarray(2 + oidLen);
      const oid = item.subarray(0, 2 + oidLen).toString("hex");
      shape.push(`${prefix}${oid}:${value[0]!.toString(16)}`);
      if (value[0] === 0x30) walk(value, `${prefix}  `);
      at += hl + l;
    }
  };
  walk(ext, "");
  return shape;
}

test("a seed reproduces the simulated PKI byte for byte; another seed gives another root", async () => {
  const [a, b, c] = await Promise.all([createSimPki({ seed: SEED }), createSimPki({ seed: SEED }), createSimPki({ seed: "a5".repeat(32) })]);
  assert.deepEqual(simRootDer(a), simRootDer(b));
  assert.equal(pckChainPem(a, a.platforms[0]!), pckChainPem(b, b.platforms[0]!));
  assert.notDeepEqual(simRootDer(a), simRootDer(c));
});

test("certificates chain root -> PCK CA -> PCK leaf and root -> TCB signing, all named SIMULATED", async () => {
  const pki = await createSimPki({ seed: SEED });
  const [leaf, ca, root] = dcap.utils.extractCerts(Buffer.from(pckChainPem(pki, pki.platforms[0]!))).map((der) => new X509Certificate(der));
  assert.ok(leaf && ca && root);
  assert.ok(leaf.verify(ca.publicKey) && ca.verify(root.publicKey) && root.verify(root.publicKey));
  const tcb = new X509Certificate(Buffer.from(pki.tcbSigning.cert.rawData));
  assert.ok(tcb.verify(root.publicKey));
  assert.equal(leaf.verify(root.publicKey), false);
  for (const cert of [leaf, ca, root, tcb]) {
    assert.match(cert.subject, /SIMULATED/);
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  }
  assert.match(root.subject, /CN=Cloister SIMULATED SGX Root CA/);
  assert.match(ca.subject, /PCK Processor CA/);
  assert.equal(root.ca, true);
  assert.equal(ca.ca, true);
  assert.equal(leaf.ca, false);
  assert.equal(tcb.ca, false);
});

test("the PCK certificate carries the SGX extension in Intel's exact structure", async () => {
  const pki = await createSimPki({ seed: SEED });
  const leafDer = Buffer.from(pki.platforms[0]!.pckCert.rawData);
  const intelLeaf = chainOfQuote(realQuote)[0]!;
  assert.deepEqual(extensionShape(leafDer), extensionShape(intelLeaf));
  const ext = dcap.utils.getIntelExtension(leafDer);
  assert.deepEqual([...dcap.utils.getCpuSvn(ext)], SIM_CURRENT_TCB);
  assert.equal(dcap.utils.getPceSvn(ext), SIM_CURRENT_PCE_SVN);
  assert.equal(dcap.utils.getFmspc(ext).toString("hex").toUpperCase(), SIM_FMSPC);
  const ppid = findExtension(["1.2.840.113741.1.13.1.1"], ext);
  assert.deepEqual(new Uint8Array(ppid), pki.platforms[0]!.ppid);
  for (let i = 1; i <= 16; i++) {
    const component = findExtension(["1.2.840.113741.1.13.1.2", `1.2.840.113741.1.13.1.2.${i}`], ext);
    assert.equal(component[0], 0x02, `component ${i} is an INTEGER`);
  }
});

test("platforms with their own TCB get their own PCK certificate; names are checked", async () => {
  const pki = await createSimPki({ seed: SEED });
  const old = await addSimPlatform(pki, { name: "old", tcbComponents: [1, ...SIM_CURRENT_TCB.slice(1)], pceSvn: 5 });
  assert.notEqual(old.pckSerial, pki.platforms[0]!.pckSerial);
  const ext = dcap.utils.getIntelExtension(Buffer.from(old.pckCert.rawData));
  assert.equal(dcap.utils.getCpuSvn(ext)[0], 1);
  assert.equal(dcap.utils.getPceSvn(ext), 5);
  await assert.rejects(addSimPlatform(pki, { name: "old" }), (e: SimPkiError) => e.code === "SIM_PKI_DUPLICATE_PLATFORM");
  await assert.rejects(addSimPlatform(pki, { name: "../x" }), (e: SimPkiError) => e.code === "SIM_PKI_BAD_PLATFORM");
  await assert.rejects(addSimPlatform(pki, { name: "short", tcbComponents: [1, 2] }), (e: SimPkiError) => e.code === "SIM_PKI_BAD_PLATFORM");
  await assert.rejects(createSimPki({ seed: "12" }), (e: SimPkiError) => e.code === "SIM_PKI_BAD_SEED");
});

test("CRLs are signed by their CA, carry the window, and list revoked PCK certificates", async () => {
  const pki = await createSimPki({ seed: SEED });
  const window = { thisUpdate: new Date("2030-01-01T00:00:00Z"), nextUpdate: new Date("2030-01-31T00:00:00Z") };
  const serial = pki.platforms[0]!.pckSerial;
  const before = new x509.X509Crl(await issuePckCrl(pki, window));
  assert.equal(before.findRevoked(pki.platforms[0]!.pckCert), null);
  await revokePckCertificate(pki, serial.toUpperCase());
  const after = new x509.X509Crl(await issuePckCrl(pki, window));
  assert.ok(after.findRevoked(pki.platforms[0]!.pckCert));
  assert.equal(after.thisUpdate.toISOString(), window.thisUpdate.toISOString());
  assert.equal(after.nextUpdate?.toISOString(), window.nextUpdate.toISOString());
  assert.ok(await after.verify({ publicKey: pki.pckCa.cert.publicKey }));
  assert.equal(await after.verify({ publicKey: pki.root.cert.publicKey }), false);
  const rootCrl = new x509.X509Crl(await issueRootCaCrl(pki, window));
  assert.ok(await rootCrl.verify({ publicKey: pki.root.cert.publicKey }));
  assert.match(rootCrl.issuer, /SIMULATED SGX Root CA/);
  await assert.rejects(revokePckCertificate(pki, "not-hex"), (e: SimPkiError) => e.code === "SIM_PKI_BAD_SERIAL");
});

test("loadOrCreateSimPki persists the PKI so concurrent processes share one root", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-sim-pki-"));
  try {
    const [a, b] = await Promise.all([loadOrCreateSimPki(dir), loadOrCreateSimPki(dir)]);
    assert.deepEqual(simRootDer(a), simRootDer(b));
    await addSimPlatform(a, { name: "second" });
    await revokePckCertificate(a, a.platforms[1]!.pckSerial);
    const reloaded = await loadOrCreateSimPki(dir);
    assert.deepEqual(simRootDer(reloaded), simRootDer(a));
    assert.deepEqual(reloaded.platforms.map((p) => p.name), ["platform-0", "second"]);
    assert.deepEqual(reloaded.revoked.map((r) => r.serial), [a.platforms[1]!.pckSerial]);
    const rootPem = await readFile(join(dir, "sim-root-ca.pem"), "utf8");
    assert.deepEqual(new Uint8Array(new X509Certificate(rootPem).raw), simRootDer(a));
    const other = await mkdtemp(join(tmpdir(), "cloister-sim-pki-"));
    try {
      assert.notDeepEqual(simRootDer(await loadOrCreateSimPki(other)), simRootDer(a));
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a corrupt PKI file is reported, not silently replaced", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-sim-pki-"));
  try {
    const { writeFile } = await import("node:fs/promises");
    await writeFile(join(dir, "sim-pki.json"), "{not json");
    await assert.rejects(loadOrCreateSimPki(dir), (e: SimPkiError) => e.code === "SIM_PKI_CORRUPT");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("loadOrCreateSimPki: processes that start together on a new directory all load one whole PKI (none reads a half-written file)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-sim-pki-race-"));
  const module = new URL("../../src/attestation/sim/pki.ts", import.meta.url).href;
  const script = `const m = await import(${JSON.stringify(module)}); const p = await m.loadOrCreateSimPki(process.argv[1]); process.stdout.write(Buffer.from(m.simRootDer(p)).toString("hex"));`;
  try {
    const roots = await Promise.all(
      Array.from({ length: 8 }, () => promisify(execFile)(process.execPath, ["--input-type=module", "-e", script, dir]).then((r) => r.stdout)),
    );
    assert.equal(new Set(roots).size, 1, "every process loaded the same root");
    assert.ok(roots[0]!.length > 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
