import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseEventLogs, sha256, toHex, zeroAddress } from "viem";
import { enclaveRegistryAbi } from "../../src/chain/abi/EnclaveRegistry.ts";
import { onChainMeasurement, registerEnclave } from "../../src/chain/actions/register-enclave.ts";
import { readEnclave } from "../../src/chain/actions/read-enclave.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import { rethrowContractRevert } from "../../src/chain/contract-error.ts";
import { advanceTime, latestTimestamp, newEnclave, register, rejectsWith, startFixture, type Fixture } from "./fixture.ts";

describe("EnclaveRegistry", () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  test("registers an enclave and reports it active", async () => {
    const enclave = newEnclave();
    const operator = f.chain.accounts.operators[0]!.address;
    const reg = await register(f, enclave, operator, { teeType: "TDX" });
    const record = await readEnclave(f.reader, f.deployment.registry, enclave.address);
    assert.deepEqual(record, {
      enclave: enclave.address,
      operator,
      expiry: reg.expiry,
      teeType: "TDX",
      simulated: true,
      revoked: false,
      hpkePublicKey: reg.hpkePublicKey,
      measurement: reg.measurement,
      active: true,
    });
    const other = await readEnclave(f.reader, f.deployment.registry, newEnclave().address);
    assert.equal(other.active, false);
    assert.equal(other.operator, zeroAddress);
  });

  test("a renewal replaces the entry and says so in its event", async () => {
    const enclave = newEnclave();
    await register(f, enclave, f.chain.accounts.operators[0]!.address);
    const now = await latestTimestamp(f);
    const tx = await registerEnclave(f.attester, f.deployment.registry, {
      enclave: enclave.address,
      operator: f.chain.accounts.operators[1]!.address,
      hpkePublicKey: toHex(new Uint8Array(32).fill(7)),
      teeType: "SEV-SNP",
      simulated: false,
      measurement: onChainMeasurement(new Uint8Array(48).fill(1)),
      expiry: now + 7200n,
      evidenceCid: "bafkreirenewed",
    });
    const [event] = parseEventLogs({ abi: enclaveRegistryAbi, logs: tx.receipt.logs, eventName: "EnclaveRegistered" });
    assert.equal(event?.args.renewal, true);
    assert.equal(event?.args.evidenceCid, "bafkreirenewed");
    const record = await readEnclave(f.reader, f.deployment.registry, enclave.address);
    assert.equal(record.operator, f.chain.accounts.operators[1]!.address);
    assert.equal(record.teeType, "SEV-SNP");
    assert.equal(record.expiry, now + 7200n);
  });

  test("only the attester registers and revokes", async () => {
    const enclave = newEnclave();
    const operator = f.operators[0]!;
    const reg = {
      enclave: enclave.address,
      operator: operator.account.address,
      hpkePublicKey: toHex(new Uint8Array(32)),
      teeType: "SGX" as const,
      simulated: true,
      measurement: toHex(new Uint8Array(32)),
      expiry: (await latestTimestamp(f)) + 100n,
      evidenceCid: "",
    };
    const err = await rejectsWith(registerEnclave(operator, f.deployment.registry, reg), "AccessControlUnauthorizedAccount");
    assert.equal(err.args.account, operator.account.address);
    await register(f, enclave, operator.account.address);
    await rejectsWith(revokeEnclave(operator, f.deployment.registry, enclave.address), "AccessControlUnauthorizedAccount");
  });

  test("rejects bad registrations", async () => {
    const enclave = newEnclave();
    const operator = f.chain.accounts.operators[0]!.address;
    await rejectsWith(register(f, enclave, zeroAddress), "ZeroAddress");
    await rejectsWith(register(f, enclave, operator, { ttl: 0n }), "ExpiryNotInFuture");
    // The typed action only takes valid TEE names; call the contract directly with an unknown code.
    const simulated = f.attester.simulateContract({
      address: f.deployment.registry,
      abi: enclaveRegistryAbi,
      functionName: "register",
      args: [{
        enclave: enclave.address,
        operator,
        hpkePublicKey: toHex(new Uint8Array(32)),
        teeType: 3,
        simulated: true,
        measurement: toHex(new Uint8Array(32)),
        expiry: 2n ** 63n,
        evidenceCid: "",
      }],
    });
    await rejectsWith(simulated.catch(rethrowContractRevert), "InvalidTeeType");
  });

  test("revocation is final and emitted", async () => {
    const enclave = newEnclave();
    const operator = f.chain.accounts.operators[0]!.address;
    await register(f, enclave, operator);
    const tx = await revokeEnclave(f.attester, f.deployment.registry, enclave.address);
    const [event] = parseEventLogs({ abi: enclaveRegistryAbi, logs: tx.receipt.logs, eventName: "EnclaveRevoked" });
    assert.equal(event?.args.enclave, enclave.address);
    const record = await readEnclave(f.reader, f.deployment.registry, enclave.address);
    assert.equal(record.revoked, true);
    assert.equal(record.active, false);
    await rejectsWith(revokeEnclave(f.attester, f.deployment.registry, enclave.address), "EnclaveAlreadyRevoked");
    await rejectsWith(register(f, enclave, operator), "EnclaveAlreadyRevoked");
    await rejectsWith(revokeEnclave(f.attester, f.deployment.registry, newEnclave().address), "EnclaveNotRegistered");
  });

  test("a registration stops being active at its expiry", async () => {
    const enclave = newEnclave();
    await register(f, enclave, f.chain.accounts.operators[0]!.address, { ttl: 30n });
    assert.equal((await readEnclave(f.reader, f.deployment.registry, enclave.address)).active, true);
    await advanceTime(f, 31n);
    assert.equal((await readEnclave(f.reader, f.deployment.registry, enclave.address)).active, false);
  });

  test("48-byte measurements are stored as their SHA-256", () => {
    const mrtd = new Uint8Array(48).fill(0xab);
    assert.equal(onChainMeasurement(mrtd), sha256(mrtd));
    const mrenclave = new Uint8Array(32).fill(0xcd);
    assert.equal(onChainMeasurement(mrenclave), toHex(mrenclave));
    assert.throws(() => onChainMeasurement(new Uint8Array(20)), RangeError);
  });
});

describe("EnclaveRegistry market views", () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(() => f.close());

  test("activeEnclave gives operator and TEE type while active, zero after revocation; operatorOf regardless", async () => {
    const enclave = newEnclave();
    const operator = f.operators[0]!.account.address;
    await register(f, enclave, operator, { teeType: "TDX" });
    const read = <F extends "activeEnclave" | "operatorOf">(functionName: F) =>
      f.reader.readContract({ address: f.deployment.registry, abi: enclaveRegistryAbi, functionName, args: [enclave.address] } as never);
    assert.deepEqual(await read("activeEnclave"), [operator, 1]);
    await revokeEnclave(f.attester, f.deployment.registry, enclave.address);
    assert.deepEqual(await read("activeEnclave"), [zeroAddress, 0]);
    assert.equal(await read("operatorOf"), operator);
    assert.equal(await f.reader.readContract({ address: f.deployment.registry, abi: enclaveRegistryAbi, functionName: "operatorOf", args: [newEnclave().address] }), zeroAddress);
  });
});
