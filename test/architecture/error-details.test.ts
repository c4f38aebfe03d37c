/**
 * Typed errors that carry extra fields publish them in `details` too, as plain JSON values (bigints as
 * decimal text), so --json output and the host's log can print them; their messages are unchanged.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { AttestedTlsError } from "../../src/attestation/atls/errors.ts";
import { ProviderUnavailableError } from "../../src/attestation/providers/errors.ts";
import { CasError } from "../../src/cas/errors.ts";
import { TransactionRevertedError } from "../../src/chain/actions/send-transaction.ts";
import { ContractRevertError } from "../../src/chain/contract-error.ts";
import { UsageError } from "../../src/cli/errors.ts";
import { EnclaveError } from "../../src/enclave/errors.ts";
import { RegistrationTransitionError } from "../../src/host/attestation-lifecycle.ts";
import { TaskProgramError } from "../../src/sdk/errors.ts";
import { KuboApiError } from "../../src/storage/kubo-http.ts";
import { CloisterError } from "../../src/util/base-error.ts";
import { HttpRequestError } from "../../src/util/guarded-http.ts";

const roundTrip = (value: unknown) => (value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown));

test("extra fields stay, and their publishable part is in details as JSON", () => {
  const cases: [CloisterError, Record<string, unknown> | undefined][] = [
    [new AttestedTlsError("ATLS_POLICY_REFUSED", "refused", { reasons: ["debug enclave"] }), { reasons: ["debug enclave"] }],
    [new AttestedTlsError("ATLS_CERT_INVALID", "no certificate"), undefined],
    [new CasError("EVIDENCE_REFUSED", "refused", ["OutOfDate"]), { reasons: ["OutOfDate"] }],
    [new ProviderUnavailableError("tdx", "/dev/tdx_guest", "no device"), { provider: "tdx", path: "/dev/tdx_guest" }],
    [new TransactionRevertedError("0xab", "acceptTask"), { transactionHash: "0xab" }],
    [new RegistrationTransitionError("revoked", "registered"), { from: "revoked", event: "registered" }],
    [new TaskProgramError(9n, "PROGRAM_THREW", "boom"), { taskId: "9" }],
    [new KuboApiError(500, "pin failed"), { status: 500 }],
    [new HttpRequestError(413, "TOO_LARGE", "too large"), { status: 413 }],
    [
      new ContractRevertError({ errorName: "WrongDeposit", args: { expected: 10n, sent: 1n }, contract: "0x0000000000000000000000000000000000000001", functionName: "acceptTask", cause: undefined }),
      { errorName: "WrongDeposit", args: { expected: "10", sent: "1" }, contract: "0x0000000000000000000000000000000000000001", functionName: "acceptTask" },
    ],
  ];
  for (const [error, details] of cases) {
    assert.ok(error instanceof CloisterError, error.name);
    assert.equal(error.message, error.shortMessage);
    assert.deepEqual(roundTrip(error.details), details, error.name);
  }
  const tls = cases[0]![0] as AttestedTlsError;
  assert.deepEqual(tls.reasons, ["debug enclave"]);
  assert.equal(new TaskProgramError(9n, "PROGRAM_THREW", "boom").message, "task 9 ran but the program failed (PROGRAM_THREW): boom");
});

test("class names, codes and messages are the modules' own", () => {
  const usage = new UsageError("give --input");
  assert.deepEqual([usage.name, usage.code, usage.message, usage.exitCode], ["UsageError", "USAGE", "give --input", 2]);
  const enclave = new EnclaveError("TIMEOUT", "no answer", { cause: new Error("inner") });
  assert.deepEqual(enclave.toJSON(), { name: "EnclaveError", code: "TIMEOUT", message: "no answer", causes: [{ name: "Error", message: "inner" }] });
});
