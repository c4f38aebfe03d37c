/**
 * The host's handle on an enclave process. It only speaks the call-gate
 * protocol (it never sees keys or plaintext), which is why it may live next to
 * the enclave: it imports nothing from src/host.
 *
 * startEnclave forks src/enclave/main.ts with "advanced" serialization (so
 * Uint8Array and bigint cross the IPC channel), sends init, and returns a
 * typed client. Responses are validated before they are returned; errors come
 * back as EnclaveError with the enclave's code.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  checkPayload,
  responseFrameSchema,
  type AttestationConfig,
  type AttestParams,
  type AttestResult,
  type EnclaveIdentity,
  type GateMethod,
  type GateParams,
  type GateResult,
  type JobOutcome,
  type RefuseJobParams,
  type RefuseJobResult,
  type ReleaseCollabResultParams,
  type ReleaseCollabResultResult,
  type RunJobParams,
} from "./call-gate.ts";
import { EnclaveError, OPERATE_ERROR_CODES, type EnclaveErrorCode } from "./errors.ts";
import type { RelayEndpoint } from "./net/frames.ts";
import { linkRelay } from "./net/relay-link.ts";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

export type FrameDirection = "to-enclave" | "from-enclave";

export interface StartEnclaveOptions {
  /** Where the enclave keeps its sealed state. */
  dataDir: string;
  attestation: AttestationConfig;
  /** Sees every frame the host sends and receives (tests use it to check confidentiality). */
  onFrame?: (direction: FrameDirection, frame: unknown) => void;
  /** The host's byte relay for the enclave's own TLS connections (src/host/net-relay.ts); without it every open is refused. */
  relay?: RelayEndpoint;
  /** Per-call timeouts in ms. */
  timeouts?: { initMs?: number; attestMs?: number; runJobMs?: number };
}

export interface EnclaveClient {
  /** The identity init returned. */
  readonly identity: EnclaveIdentity;
  readonly pid: number;
  init(): Promise<EnclaveIdentity>;
  /** Evidence for the operator (host account) named in params: its report_data commits to it. */
  attest(params: AttestParams): Promise<AttestResult>;
  /**
   * Runs one job of any kind (the job seam). Its params are validated here before they are sent, and again
   * in the enclave. Timeout: for a task, the envelope's limit plus a margin (runTaskTimeoutMs); override
   * with `timeoutMs`.
   */
  runJob(params: RunJobParams, opts?: { timeoutMs?: number }): Promise<JobOutcome>;
  /** A signed refusal when the job's own inputs make it unrunnable; REFUSAL_UNFOUNDED otherwise. */
  refuseJob(params: RefuseJobParams): Promise<RefuseJobResult>;
  /** A clean-room result the compute enclave held until its run's record is proved (COLLAB_REFUSED with COLLAB_RUN_PENDING while it is not). */
  releaseCollabResult(params: ReleaseCollabResultParams): Promise<ReleaseCollabResultResult>;
  /** Stops the enclave process and waits for it to exit. */
  close(): Promise<void>;
  /** Resolves when the process exits, with its exit code or signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const KNOWN_CODES = new Set<string>([
  "MALFORMED_ENVELOPE", "ENVELOPE_DIGEST_MISMATCH", "PROGRAM_DIGEST_MISMATCH", "INPUT_DIGEST_MISMATCH", "TASK_MISMATCH",
  "NOT_A_CANDIDATE", "KEY_UNWRAP_FAILED", "INPUT_DECRYPTION_FAILED", "RESULT_KEY_INVALID", "COLLAB_REFUSED", "REFUSAL_UNFOUNDED", "NOT_INITIALIZED", "UNSEAL_FAILED",
  "SEALED_STATE_MALFORMED", "ATTESTATION_UNAVAILABLE", "ATTESTATION_FAILED", "BAD_REQUEST", "BAD_RESPONSE", "TIMEOUT",
  "ENCLAVE_EXITED", "INTERNAL",
  "PIPELINE_DIGEST_MISMATCH", "PIPELINE_MALFORMED", "CURSOR_STATE_MISMATCH", "PIPELINE_RUN_FAILED", "PIPELINE_CHAIN_UNPROVEN",
  ...OPERATE_ERROR_CODES,
]);

interface Pending {
  method: GateMethod;
  resolve: (value: unknown) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export async function startEnclave(options: StartEnclaveOptions): Promise<EnclaveClient> {
  const child: ChildProcess = fork(MAIN, [], {
    serialization: "advanced",
    // isolated-vm requires --no-node-snapshot on Node >= 20.
    execArgv: ["--no-node-snapshot", "--disable-warning=ExperimentalWarning"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const pending = new Map<number, Pending>();
  const relay = linkRelay(child, options.relay, options.onFrame);
  let nextId = 1;
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      exitInfo = { code, signal };
      relay.close();
      for (const [id, p] of pending) {
        clearTimeout(p.timer);
        p.reject(new EnclaveError("ENCLAVE_EXITED", `the enclave process exited (code ${code}, signal ${signal}) before answering ${p.method}`));
        pending.delete(id);
      }
      resolve({ code, signal });
    });
  });
  child.on("error", () => {
    // Surfaced through "exit" and the pending calls.
  });

  child.on("message", (raw: unknown) => {
    options.onFrame?.("from-enclave", raw);
    if (relay.route(raw)) return;
    const frame = responseFrameSchema.safeParse(raw);
    if (!frame.success) return;
    const p = pending.get(frame.data.id);
    if (!p) return;
    pending.delete(frame.data.id);
    clearTimeout(p.timer);
    if ("error" in frame.data) {
      const { code, message } = frame.data.error;
      p.reject(new EnclaveError(KNOWN_CODES.has(code) ? (code as EnclaveErrorCode) : "INTERNAL", message));
      return;
    }
    const checked = checkPayload(p.method, "result", frame.data.result);
    if (checked.ok) p.resolve(checked.value);
    else p.reject(new EnclaveError("BAD_RESPONSE", `the enclave sent a malformed response: ${checked.problem}`));
  });

  function call<M extends GateMethod>(method: M, params: GateParams<M>, timeoutMs: number): Promise<GateResult<M>> {
    if (exitInfo) {
      return Promise.reject(new EnclaveError("ENCLAVE_EXITED", `the enclave process has exited (code ${exitInfo.code}, signal ${exitInfo.signal}); start a new one`));
    }
    // The enclave validates every request against the call gate's schemas itself. Job requests are validated
    // here too, so that a host bug shows as the host's (BAD_REQUEST before anything is sent).
    if (method === "runJob" || method === "refuseJob") {
      const checked = checkPayload(method, "params", params);
      if (!checked.ok) return Promise.reject(new EnclaveError("BAD_REQUEST", `refusing to send a malformed request: ${checked.problem}`));
    }
    const id = nextId++;
    const frame = { id, method, params };
    return new Promise<GateResult<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new EnclaveError("TIMEOUT", `the enclave did not answer ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      const fail = (e: EnclaveError) => {
        clearTimeout(timer);
        pending.delete(id);
        reject(e);
      };
      pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject, timer });
      options.onFrame?.("to-enclave", frame);
      try {
        child.send(frame, (err) => {
          if (err) fail(new EnclaveError("ENCLAVE_EXITED", `could not send ${method} to the enclave: ${err.message}`));
        });
      } catch (e) {
        // Only values the structured clone algorithm can copy cross the channel (no functions, symbols, ...).
        fail(new EnclaveError("BAD_REQUEST", `refusing to send a malformed ${method} request: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
  }

  const t = { initMs: 30_000, attestMs: 30_000, runJobMs: undefined as number | undefined, ...options.timeouts };
  const init = () => call("init", { dataDir: options.dataDir, attestation: options.attestation }, t.initMs);
  let identity: EnclaveIdentity;
  try {
    identity = await init();
  } catch (e) {
    child.kill("SIGKILL");
    await exited;
    throw e;
  }

  return {
    identity,
    pid: child.pid ?? -1,
    exited,
    init,
    attest: (params) => call("attest", params, t.attestMs),
    runJob: (params, opts) => call("runJob", params, opts?.timeoutMs ?? t.runJobMs ?? runJobBudget(params)),
    refuseJob: (params) => call("refuseJob", params, t.runJobMs ?? 60_000),
    releaseCollabResult: (params) => call("releaseCollabResult", params, 300_000),
    async close() {
      if (exitInfo) return;
      child.disconnect();
      const timer = setTimeout(() => child.kill("SIGKILL"), 2_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Margin over a task's wall-time limit for the enclave's crypto and isolate start-up. */
const RUN_TASK_MARGIN_MS = 15_000;

/** How long to wait for runTask of a task whose envelope allows `timeoutMs` of wall time (pass it as `timeoutMs` when the envelope is parsed already). */
export function runTaskTimeoutMs(limits: { timeoutMs: number }): number {
  return limits.timeoutMs + RUN_TASK_MARGIN_MS;
}

/** For a task, the envelope's time limit plus a margin for crypto and isolate start-up; 60 s when unreadable. */
function runJobBudget(request: RunJobParams): number {
  // A pipeline run reads and writes whole tables: the caller passes its own timeout.
  if (request.kind !== "task") return 30 * 60_000;
  try {
    const limits = (JSON.parse(new TextDecoder().decode(request.params.envelope)) as { limits?: { timeoutMs?: unknown } }).limits;
    if (typeof limits?.timeoutMs === "number") return runTaskTimeoutMs({ timeoutMs: limits.timeoutMs });
  } catch {
    // The enclave reports a malformed envelope itself.
  }
  return 60_000;
}
