/**
 * The host's handle on one vault enclave process (src/enclave/vault/main.ts):
 * forks it, sends gate requests, turns error frames into VaultGateError with
 * the enclave's code (the vault enclave's own, or the share library's:
 * WRONG_OWNER, REQUEST_REPLAYED, TAMPERED_SHARE, ...). Everything it sends
 * and receives is public or sealed; `onFrame` lets tests check that.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { HpkeSealed } from "../../crypto/hpke.ts";
import type { Address } from "viem";
import type { ShareSetDescriptorJson } from "../../protocol/vault-descriptor.ts";
import { CloisterError } from "../../util/base-error.ts";
import type { AttestationConfig, AttestResult, EnclaveIdentity } from "../call-gate.ts";
import type { VaultChainConfigParams, VaultGateMethod, VaultGateParams } from "./gate.ts";
import type { SealedEnvelope, SignedConfirmation, TransferItem } from "./service.ts";
import type { VaultState } from "./states.ts";
import type { RelayEndpoint } from "../net/frames.ts";
import { linkRelay } from "../net/relay-link.ts";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

/** An error the vault enclave answered with (its code), or the process failing (ENCLAVE_EXITED, TIMEOUT). */
export class VaultGateError extends CloisterError<string> {}

export interface VaultEnclaveStatus {
  state: VaultState;
  place: { cluster: bigint; slot: number } | null;
  shares: number;
  unconfirmed: number;
  checkpoint: bigint | null;
  bootstrapCursor: bigint | null;
}

export interface VaultEnclaveClient {
  readonly identity: EnclaveIdentity & { state: VaultState };
  readonly pid: number;
  attest(p: VaultGateParams<"attest">): Promise<AttestResult>;
  status(): Promise<VaultEnclaveStatus>;
  store(p: { descriptor: ShareSetDescriptorJson; envelope: SealedEnvelope }): Promise<{ tokenId: bigint; version: bigint }>;
  /** Many store envelopes for this slot in one call (the SDK's batched store); refusals come back by index. */
  storeMany(p: { items: { descriptor: ShareSetDescriptorJson; envelope: SealedEnvelope }[]; atBlock?: bigint }): Promise<{ stored: { tokenId: bigint; version: bigint }[]; refused: { index: number; code: string }[] }>;
  importShares(p: { items: { descriptor: ShareSetDescriptorJson; envelope: SealedEnvelope }[]; cursor?: bigint; atBlock?: bigint }): Promise<{ imported: { tokenId: bigint; version: bigint }[]; refused: { index: number; code: string }[] }>;
  confirmations(p: { max: number; batches?: number }): Promise<SignedConfirmation[]>;
  markConfirmed(p: { shares: { tokenId: bigint; version: bigint }[] }): Promise<void>;
  retrieve(p: { request: unknown }): Promise<{ slot: number; version: bigint; descriptor: ShareSetDescriptorJson; envelope: HpkeSealed }>;
  exportShares(p: { requester: Address; tokenIds: bigint[] }): Promise<{ items: TransferItem[]; missing: bigint[] }>;
  missing(p: { tokens: { tokenId: bigint; version: bigint }[] }): Promise<{ tokenIds: bigint[] }>;
  held(p: { after: bigint | null; limit: number }): Promise<{ tokens: { tokenId: bigint; version: bigint }[] }>;
  drop(p: { tokenId: bigint }): Promise<{ dropped: boolean }>;
  reshareExport(p: { tokenId: bigint; dealer: Address }): Promise<TransferItem & { slot: number }>;
  reshareDeal(p: { tokenId: bigint; items: { slot: number; descriptor: ShareSetDescriptorJson; envelope: SealedEnvelope }[] }): Promise<{ descriptor: ShareSetDescriptorJson; root: `0x${string}`; envelopes: { slot: number; enc: Uint8Array; ciphertext: Uint8Array; seq: number }[] }>;
  reshareAccept(p: { descriptor: ShareSetDescriptorJson; envelope: SealedEnvelope }): Promise<{ slot: number; signature: `0x${string}`; newRoot: `0x${string}` }>;
  reshareCommit(p: { tokenId: bigint }): Promise<{ committed: boolean }>;
  /** Starts the enclave's mutual-aTLS listener for peers (needs a relay with inbound); resolves with the address peers dial. */
  listen(): Promise<{ host: string; port: number }>;
  /** The enclave itself fetches shares from the peer listening at host:port over mutual attested TLS, and imports them. */
  fetchFrom(p: { host: string; port: number; peer: Address; tokenIds: bigint[]; atBlock?: bigint }): Promise<{ imported: { tokenId: bigint; version: bigint }[]; refused: { index: number; code: string }[] }>;
  /**
   * Bootstrap over one mutual-aTLS session: the enclave pages through the holdings of the peer at host:port
   * from its sealed cursor, pipelined, importing and sealing the cursor page by page.
   */
  bootstrapFrom(p: { host: string; port: number; peer: Address; pageSize: number; maxPages?: number }): Promise<{ pages: { shares: number; refused: number; cursor: bigint }[]; done: boolean }>;
  bootstrapDone(p: { block: bigint }): Promise<void>;
  advance(p: { block: bigint; caughtUp: boolean }): Promise<void>;
  /** Stops the process (disconnect, then SIGKILL after 2 s). */
  close(): Promise<void>;
  /** Kills it at once (tests: an enclave that dies mid-work). */
  kill(): Promise<void>;
  readonly exited: Promise<void>;
}

export interface StartVaultEnclaveOptions {
  dataDir: string;
  attestation: AttestationConfig;
  chain: VaultChainConfigParams;
  onFrame?: (direction: "to-enclave" | "from-enclave", frame: unknown) => void;
  /** The host's byte relay for the enclave's own TLS sessions (src/host/net-relay.ts, with `inbound` to listen for peers). */
  relay?: RelayEndpoint;
  timeoutMs?: number;
}

export async function startVaultEnclave(options: StartVaultEnclaveOptions): Promise<VaultEnclaveClient> {
  const child: ChildProcess = fork(MAIN, [], { serialization: "advanced", execArgv: ["--disable-warning=ExperimentalWarning"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const pending = new Map<number, { method: string; resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  let gone = false;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      gone = true;
      for (const [id, p] of pending) {
        clearTimeout(p.timer);
        p.reject(new VaultGateError("ENCLAVE_EXITED", `the vault enclave exited (code ${code}, signal ${signal}) before answering ${p.method}`));
        pending.delete(id);
      }
      resolve();
    });
  });
  child.on("error", () => {});
  const relay = linkRelay(child, options.relay, options.onFrame ? (d, f) => options.onFrame!(d, f) : undefined);
  void exited.then(() => relay.close());
  child.on("message", (raw: unknown) => {
    options.onFrame?.("from-enclave", raw);
    if (relay.route(raw)) return;
    const frame = raw as { id?: number; result?: unknown; error?: { code: string; message: string } };
    const p = typeof frame.id === "number" ? pending.get(frame.id) : undefined;
    if (!p) return;
    pending.delete(frame.id!);
    clearTimeout(p.timer);
    if (frame.error) p.reject(new VaultGateError(String(frame.error.code), String(frame.error.message)));
    else p.resolve(frame.result);
  });
  const timeoutMs = options.timeoutMs ?? 120_000;
  function call<T>(method: VaultGateMethod, params: unknown): Promise<T> {
    if (gone) return Promise.reject(new VaultGateError("ENCLAVE_EXITED", `the vault enclave has exited; start it again`));
    const id = nextId++;
    const frame = { id, method, params };
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new VaultGateError("TIMEOUT", `the vault enclave did not answer ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject, timer });
      options.onFrame?.("to-enclave", frame);
      child.send(frame, (err) => {
        if (err) {
          clearTimeout(timer);
          pending.delete(id);
          reject(new VaultGateError("ENCLAVE_EXITED", `could not send ${method} to the vault enclave: ${err.message}`));
        }
      });
    });
  }
  let identity: EnclaveIdentity & { state: VaultState };
  try {
    identity = await call("init", { dataDir: options.dataDir, attestation: options.attestation, chain: options.chain });
  } catch (e) {
    child.kill("SIGKILL");
    await exited;
    throw e;
  }
  return {
    identity,
    pid: child.pid ?? -1,
    exited,
    attest: (p) => call("attest", p),
    status: () => call("status", {}),
    store: (p) => call("store", p),
    storeMany: (p) => call("storeMany", p),
    importShares: (p) => call("importShares", p),
    confirmations: (p) => call("confirmations", p),
    markConfirmed: (p) => call("markConfirmed", p),
    retrieve: (p) => call("retrieve", p),
    exportShares: (p) => call("exportShares", p),
    missing: (p) => call("missing", p),
    held: (p) => call("held", p),
    drop: (p) => call("drop", p),
    reshareExport: (p) => call("reshareExport", p),
    reshareDeal: (p) => call("reshareDeal", p),
    reshareAccept: (p) => call("reshareAccept", p),
    reshareCommit: (p) => call("reshareCommit", p),
    listen: () => call("listen", {}),
    fetchFrom: (p) => call("fetchFrom", p),
    bootstrapFrom: (p) => call("bootstrapFrom", p),
    bootstrapDone: (p) => call("bootstrapDone", p),
    advance: (p) => call("advance", p),
    async close() {
      if (gone) return;
      child.disconnect();
      const timer = setTimeout(() => child.kill("SIGKILL"), 2_000);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (gone) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}


