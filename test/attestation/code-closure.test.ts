/**
 * The simulated measurement covers exactly what the enclave loads: its import
 * closure and the locked packages it uses. Host-side code and packages it does
 * not load leave the measurement as it is.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codeClosure } from "../../src/attestation/sim/code-closure.ts";
import { listMeasuredFiles, measureEnclaveCode, REPO_ROOT } from "../../src/enclave/measurement.ts";

let copy: string;
before(async () => {
  copy = await mkdtemp(join(tmpdir(), "cloister-closure-"));
  await cp(join(REPO_ROOT, "src"), join(copy, "src"), { recursive: true });
  await cp(join(REPO_ROOT, "package-lock.json"), join(copy, "package-lock.json"));
});
after(() => rm(copy, { recursive: true, force: true }));

async function changed(edit: () => Promise<void>): Promise<boolean> {
  const before = await measureEnclaveCode(copy);
  await edit();
  return (await measureEnclaveCode(copy)) !== before;
}

const touch = (file: string) => () => appendFile(join(copy, file), "\n// edited by the test\n");

async function editLock(path: string, integrity: string): Promise<void> {
  const file = join(copy, "package-lock.json");
  const lock = JSON.parse(await readFile(file, "utf8")) as { packages: Record<string, { integrity?: string }> };
  assert.ok(lock.packages[path], `${path} is in the lockfile`);
  lock.packages[path]!.integrity = integrity;
  await writeFile(file, JSON.stringify(lock));
}

test("the enclave's closure holds its own code and what it imports, and not the host's", async () => {
  const files = await listMeasuredFiles();
  // The evidence verifier is the enclave's own since enclaves attest each other (clean-room partners, vault peers).
  for (const f of ["src/enclave/main.ts", "src/enclave/jobs/task.ts", "src/crypto/hpke.ts", "src/protocol/provenance.ts", "src/attestation/providers/index.ts", "src/attestation/dcap/verify-quote.ts"]) {
    assert.ok(files.includes(f), `${f} is measured`);
  }
  for (const f of ["src/host/node-daemon.ts", "src/enclave/client.ts", "src/sdk/client.ts", "src/cli/main.ts", "src/cas/service.ts", "src/attestation/collateral.ts", "src/chain/deploy.ts"]) {
    assert.ok(!files.includes(f), `${f} is not loaded by the enclave, so not measured`);
  }
});

test("editing a file the enclave does not load leaves the measurement; editing one it loads changes it", async () => {
  assert.equal(await changed(touch("src/host/node-daemon.ts")), false, "host code");
  assert.equal(await changed(touch("src/enclave/client.ts")), false, "the host's side of the gate");
  assert.equal(await changed(touch("src/attestation/collateral.ts")), false, "the host's collateral fetching, which the enclave does not import");
  assert.equal(await changed(touch("src/enclave/jobs/task.ts")), true, "the task job");
  assert.equal(await changed(touch("src/crypto/sha256.ts")), true, "crypto the enclave imports");
});

test("another version of a package the enclave loads changes the measurement; of one it does not, not", async () => {
  assert.equal(await changed(() => editLock("node_modules/hardhat", "sha512-other")), false, "hardhat");
  assert.equal(await changed(() => editLock("node_modules/viem", "sha512-other")), true, "viem");
  assert.equal(await changed(() => editLock("node_modules/secp256k1", "sha512-other")), true, "secp256k1, loaded through createRequire");
});

test("type-only imports are not followed; computed imports and unlocked packages are refused", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-closure-small-"));
  try {
    await mkdir(join(dir, "src"));
    await writeFile(join(dir, "package-lock.json"), JSON.stringify({ packages: { "node_modules/dep": { version: "1.0.0", integrity: "sha512-dep" } } }));
    await writeFile(join(dir, "src/types.ts"), "export interface T { a: number }\n");
    await writeFile(join(dir, "src/used.ts"), 'import { readFileSync } from "node:fs";\nexport const used = readFileSync;\n');
    await writeFile(join(dir, "src/entry.ts"), 'import type { T } from "./types.ts";\nimport { used } from "./used.ts";\nimport dep from "dep";\nexport const x: T = { a: 1 };\nexport { used, dep };\n');
    const closure = await codeClosure(["src/entry.ts"], dir);
    assert.deepEqual(closure.files, ["src/entry.ts", "src/used.ts"]);
    assert.deepEqual(closure.packages, [{ path: "node_modules/dep", version: "1.0.0", integrity: "sha512-dep" }]);

    await writeFile(join(dir, "src/computed.ts"), "const name = './used.ts';\nexport const m = await import(name);\n");
    await assert.rejects(codeClosure(["src/computed.ts"], dir), { code: "MEASUREMENT_COMPUTED_IMPORT" });
    assert.deepEqual((await codeClosure(["src/computed.ts"], dir, { computedImports: ["src/computed.ts"] })).files, ["src/computed.ts"]);

    await writeFile(join(dir, "src/unlocked.ts"), 'import x from "not-installed";\nexport default x;\n');
    await assert.rejects(codeClosure(["src/unlocked.ts"], dir), { code: "MEASUREMENT_UNLOCKED_PACKAGE", message: /"not-installed"/ });
    await writeFile(join(dir, "src/missing.ts"), 'import "./nowhere.ts";\n');
    await assert.rejects(codeClosure(["src/missing.ts"], dir), { code: "MEASUREMENT_UNRESOLVED_IMPORT", message: /nowhere\.ts/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
