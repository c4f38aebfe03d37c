/**
 * The registration's state machine (every transition, allowed and refused), the admission rule it implies,
 * and its driver on the in-process chain: renewal at 2/3 of the lifetime, retries with backoff while the
 * attestation service is down, expiry by the chain's clock, and revocation by the registry's event.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { keccak256, stringToBytes } from "viem";
import { casHttpClient } from "../../src/cas/http-client.ts";
import { readEnclave } from "../../src/chain/actions/read-enclave.ts";
import { registerEnclave } from "../../src/chain/actions/register-enclave.ts";
import { revokeEnclave } from "../../src/chain/actions/revoke-enclave.ts";
import {
  AttestationLifecycle,
  refusalToAccept,
  registrationStates,
  RegistrationTransitionError,
  type RegistrationEvent,
  type RegistrationState,
} from "../../src/host/attestation-lifecycle.ts";
import { RegistrationKeeper } from "../../src/host/registration-keeper.ts";
import { advanceTime, latestTimestamp, newEnclave, startFixture, type Fixture } from "../contracts/fixture.ts";
import { until } from "../faults/helpers.ts";

const events: Record<RegistrationEvent["type"], RegistrationEvent> = {
  registered: { type: "registered", registeredAt: 1_000n, expiry: 1_000n + 86_400n },
  "renewal-due": { type: "renewal-due" },
  "attempt-failed": { type: "attempt-failed", error: "the service is down" },
  expired: { type: "expired" },
  revoked: { type: "revoked" },
};

/** The whole table: from each state, each event's target state, or undefined when it is refused. */
const expected: Record<RegistrationState, Record<RegistrationEvent["type"], RegistrationState | undefined>> = {
  attesting: { registered: "registered", "renewal-due": undefined, "attempt-failed": "attesting", expired: undefined, revoked: "revoked" },
  registered: { registered: "registered", "renewal-due": "renewing", "attempt-failed": undefined, expired: "expired", revoked: "revoked" },
  renewing: { registered: "registered", "renewal-due": undefined, "attempt-failed": "renewing", expired: "expired", revoked: "revoked" },
  expired: { registered: "registered", "renewal-due": undefined, "attempt-failed": "expired", expired: undefined, revoked: "revoked" },
  revoked: { registered: undefined, "renewal-due": undefined, "attempt-failed": undefined, expired: undefined, revoked: undefined },
};

/** Paths of allowed events from "attesting" to each state. */
const pathTo: Record<RegistrationState, RegistrationEvent["type"][]> = {
  attesting: [],
  registered: ["registered"],
  renewing: ["registered", "renewal-due"],
  expired: ["registered", "expired"],
  revoked: ["revoked"],
};

function lifecycleIn(state: RegistrationState) {
  const transitions: [RegistrationState, RegistrationState][] = [];
  const lifecycle = new AttestationLifecycle({ onTransition: (from, to) => transitions.push([from, to.state]) });
  for (const type of pathTo[state]) lifecycle.apply(events[type]);
  assert.equal(lifecycle.state, state);
  transitions.length = 0;
  return { lifecycle, transitions };
}

for (const from of registrationStates) {
  for (const type of Object.keys(events) as RegistrationEvent["type"][]) {
    const to = expected[from][type];
    test(`${from} + ${type} → ${to ?? "refused"}`, () => {
      const { lifecycle, transitions } = lifecycleIn(from);
      if (to === undefined) {
        let error: unknown;
        try {
          lifecycle.apply(events[type]);
        } catch (e) {
          error = e;
        }
        assert.ok(error instanceof RegistrationTransitionError, `refused with RegistrationTransitionError, got ${String(error)}`);
        assert.equal(error.code, "REGISTRATION_TRANSITION");
        assert.match(error.message, new RegExp(`"${type}" in state "${from}"`));
        assert.equal(lifecycle.state, from, "a refused event leaves the state alone");
        assert.deepEqual(transitions, []);
        return;
      }
      const snapshot = lifecycle.apply(events[type]);
      assert.equal(snapshot.state, to);
      assert.deepEqual(transitions, [[from, to]]);
    });
  }
}

test("a registration records its chain times and clears failures; a failure counts and keeps the last error", () => {
  const lifecycle = new AttestationLifecycle();
  lifecycle.apply({ type: "attempt-failed", error: "first" });
  assert.equal(lifecycle.snapshot.failures, 1);
  lifecycle.apply({ type: "registered", registeredAt: 1_000n, expiry: 1_000n + 86_400n });
  assert.deepEqual(lifecycle.snapshot, { state: "registered", registeredAt: 1_000n, expiry: 87_400n, failures: 0 });
  assert.equal(lifecycle.renewAt, 1_000n + 57_600n, "renewal at 2/3 of 24 h: 16 h after the registration's block");
  lifecycle.apply({ type: "renewal-due" });
  lifecycle.apply({ type: "attempt-failed", error: "down" });
  lifecycle.apply({ type: "attempt-failed", error: "still down" });
  assert.equal(lifecycle.snapshot.failures, 2);
  assert.equal(lifecycle.snapshot.lastError, "still down");
  assert.equal(lifecycle.snapshot.expiry, 87_400n, "a failed renewal keeps the registration's expiry");
  assert.throws(() => new AttestationLifecycle({ renewAtFraction: 1 }), RangeError);
});

test("admission: nothing without a registration; while renewing only tasks whose deadline is before the expiry", () => {
  const expiry = 10_000n;
  const snapshot = (state: RegistrationState) => ({ state, registeredAt: 1_000n, expiry, failures: 0 });
  assert.equal(refusalToAccept(snapshot("registered"), expiry + 1_000n), undefined, "registered: the renewal comes before the expiry");
  assert.equal(refusalToAccept(snapshot("renewing"), expiry), undefined);
  assert.match(refusalToAccept(snapshot("renewing"), expiry + 1n) ?? "", /deadline 10001 falls after this node's registration expiry 10000/);
  assert.match(refusalToAccept(snapshot("expired"), 0n) ?? "", /expired at 10000/);
  assert.match(refusalToAccept(snapshot("revoked"), 0n) ?? "", /revoked/);
  assert.match(refusalToAccept({ state: "attesting", failures: 0 }, 0n) ?? "", /not registered yet/);
});

// ---------------------------------------------------------------- the driver, on the chain

let f: Fixture;
before(async () => {
  f = await startFixture();
});
after(async () => {
  await f?.close();
});

test("the keeper renews at 2/3, retries with backoff while the service is down, expires by the chain's clock, and sees a revocation", async () => {
  const enclave = newEnclave();
  const ttl = 24n * 3600n;
  // The attestation service, up or down: down is a real client call to a port nothing listens on.
  let serviceUp = true;
  const unreachable = casHttpClient("http://127.0.0.1:9", { timeoutMs: 2_000 });
  const attempts: { at: number; up: boolean }[] = [];
  const keeper = new RegistrationKeeper({
    reader: f.reader,
    registry: f.deployment.registry,
    enclave: enclave.address,
    attestAndRegister: async () => {
      attempts.push({ at: Date.now(), up: serviceUp });
      if (!serviceUp) await unreachable.challenge();
      const sent = await registerEnclave(f.attester, f.deployment.registry, {
        enclave: enclave.address,
        operator: f.operators[0]!.account.address,
        hpkePublicKey: keccak256(stringToBytes("hpke")),
        teeType: "SGX",
        simulated: true,
        measurement: keccak256(stringToBytes("measurement")),
        expiry: (await latestTimestamp(f)) + ttl,
        evidenceCid: "bafkreievidence",
      });
      return { transactionHash: sent.hash };
    },
    pollIntervalMs: 20,
    retryBaseMs: 100,
    retryMaxMs: 400,
    onError: (error) => assert.fail(`a chain read failed: ${String(error)}`),
  });
  await keeper.start();
  try {
    const first = keeper.lifecycle.snapshot;
    assert.equal(first.state, "registered");
    assert.equal(first.expiry, (await readEnclave(f.reader, f.deployment.registry, enclave.address)).expiry, "the expiry is the registry's");
    // The registration's block is stamped at or a moment after the time its expiry was computed from.
    const lifetime = first.expiry! - first.registeredAt!;
    assert.ok(lifetime <= ttl && lifetime >= ttl - 2n, `lifetime ${lifetime} s from the registration's block`);

    // Before the renewal point nothing happens; past it the keeper renews.
    await advanceTime(f, 15n * 3600n);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(attempts.length, 1, "no renewal before 2/3 of the lifetime");
    await advanceTime(f, 3600n + 60n);
    await until(() => (keeper.lifecycle.snapshot.expiry! > first.expiry! ? true : undefined), "the renewal", 5_000, 10);
    assert.equal(keeper.lifecycle.state, "registered");
    assert.equal(attempts.length, 2);

    // Service down at the next renewal point: retried with growing waits, the registration still holds.
    serviceUp = false;
    const second = keeper.lifecycle.snapshot;
    await advanceTime(f, second.expiry! - (await latestTimestamp(f)) - 7n * 3600n);
    await until(() => (keeper.lifecycle.snapshot.failures >= 3 ? true : undefined), "three failed renewals", 10_000, 10);
    assert.equal(keeper.lifecycle.state, "renewing");
    assert.match(keeper.lifecycle.snapshot.lastError ?? "", /cannot reach the attestation service/);
    const failed = attempts.filter((a) => !a.up);
    const gaps = failed.slice(1).map((a, i) => a.at - failed[i]!.at);
    assert.ok(gaps.every((gap) => gap >= 50), `retries back off (base 100 ms, jittered down to half): gaps ${gaps.join(", ")} ms`);

    // Still down past the expiry: expired by the chain's clock; then the service is back and it registers again.
    await advanceTime(f, 8n * 3600n);
    await until(() => (keeper.lifecycle.state === "expired" ? true : undefined), "the expiry", 5_000, 10);
    serviceUp = true;
    await until(() => (keeper.lifecycle.state === "registered" ? true : undefined), "the registration after the expiry", 5_000, 10);
    assert.ok(keeper.lifecycle.snapshot.expiry! > (await latestTimestamp(f)));
    assert.equal(keeper.lifecycle.snapshot.failures, 0);

    // Revoked by the attester: the keeper sees the registry's event.
    await revokeEnclave(f.attester, f.deployment.registry, enclave.address);
    await until(() => (keeper.lifecycle.state === "revoked" ? true : undefined), "the revocation", 5_000, 10);
  } finally {
    await keeper.stop();
  }
});
