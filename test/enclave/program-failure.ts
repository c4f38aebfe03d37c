/** Runs a JS program that must fail, and returns its ProgramError after checking its code (and message). */
import assert from "node:assert/strict";
import { runJsProgram } from "../../src/enclave/executors/js-isolate.ts";
import { ProgramError } from "../../src/enclave/executors/program-error.ts";
import type { TaskLimits } from "../../src/protocol/task.ts";

export async function expectProgramError(source: string, code: string, limits: TaskLimits, match?: RegExp): Promise<ProgramError> {
  let failure: ProgramError | undefined;
  await assert.rejects(runJsProgram(source, new TextEncoder().encode("in"), limits), (e: unknown) => {
    assert.ok(e instanceof ProgramError, `expected ProgramError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (match) assert.match(e.message, match);
    failure = e;
    return true;
  });
  return failure!;
}
