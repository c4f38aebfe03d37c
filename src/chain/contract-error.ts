/**
 * Turns a viem contract revert into a typed ContractRevertError carrying the
 * custom error's name and named arguments, with a hint on what to do.
 */
import { BaseError, ContractFunctionRevertedError, type Address } from "viem";
import { CloisterError } from "../util/base-error.ts";

const hints: Record<string, string> = {
  UnknownTask: "no task has this id on this market; check the task id and the market address",
  TaskExists: "a task with this salt was already submitted by this requester; use a fresh salt",
  InvalidSpec: "fix the task spec as the reason says",
  NoEscrow: "spec.maxPrice must be non-zero: it is escrowed and pays the node",
  WrongEscrow: "send spec.maxPrice as value for a native-currency task (submitTasks: the sum over the batch's native-currency tasks), and no value for an ERC-20 task (approve the market instead)",
  EmptyBatch: "a batch call needs at least one task",
  BatchLengthMismatch: "pass one salt per spec (submitTasks) and one spec per task id (acceptTasks)",
  DeadlinePassed: "the attempt's deadline is over; the task can only be reopened (reopenTask)",
  DeadlineNotReached: "the attempt's deadline has not passed yet; wait for it before reopening",
  TaskNotOpen: "only an open task can be accepted or cancelled; another node may have accepted it",
  TaskNotAccepted: "only an accepted task can be completed or reopened; it may already be completed, cancelled or refunded",
  SpecMismatch: "pass the spec from TaskSubmitted/TaskReopened and the assignment from the current attempt's TaskAccepted unchanged",
  EnclaveNotCandidate: "the requester restricted the task to other enclaves",
  EnclaveNotActive: "the enclave is not registered, was revoked or its registration expired; have the attestation service register it again",
  NotEnclaveOperator: "only the operator registered for the enclave may post its offers and accept tasks for it",
  NoOffer: "the enclave has no offer in the task's payment token; post one with postOffer",
  InvalidOffer: "fix the offer as the reason says",
  PriceAboveMax: "the enclave's offer price exceeds the task's maxPrice",
  InsufficientResources: "the enclave's offer gives less CPU, memory or duration than the task requires",
  TeeTypeNotAccepted: "the task does not accept the enclave's TEE type (spec.teeTypes bit 0 SGX, 1 TDX, 2 SEV-SNP)",
  UnknownCategory: "the category is not defined on this market; use one whose time reference is non-zero (0..7)",
  WrongDeposit: "send exactly the market's taskDeposit() as value with acceptTask (acceptTasks: taskDeposit() times the number of tasks)",
  InvalidCompletionSignature: "the completion must be an EIP-712 Completion signed by the enclave that accepted the task, over the exact digests",
  NotRequester: "only the requester who submitted the task may cancel it",
  NothingToWithdraw: "no deferred payment in this token is owed to this account",
  WithdrawFailed: "the account rejected the transfer; withdraw from an account that accepts it",
  OwnableUnauthorizedAccount: "only the market's admin (owner) may change categories and the deposit",
  ZeroAddress: "enclave, operator, admin and attester addresses must be non-zero",
  InvalidTeeType: "teeType must be 0 (SGX), 1 (TDX) or 2 (SEV-SNP)",
  ExpiryNotInFuture: "the registration expiry must be a future unix time",
  EnclaveAlreadyRevoked: "a revoked enclave key stays revoked; the enclave must generate a new key and be attested again",
  EnclaveNotRegistered: "no enclave is registered under this address",
  AccessControlUnauthorizedAccount: "the sender lacks the role this function needs (registration needs ATTESTER_ROLE)",
};

export class ContractRevertError extends CloisterError<"CONTRACT_REVERT"> {
  /** The custom error's name, e.g. "SpecMismatch"; "Error" or "Panic" for require/assert failures. */
  readonly errorName: string;
  /** The error's arguments by parameter name (by position when unnamed). */
  readonly args: Readonly<Record<string, unknown>>;
  readonly contract: Address | undefined;
  readonly functionName: string | undefined;

  constructor(params: {
    errorName: string;
    args: Record<string, unknown>;
    contract?: Address;
    functionName?: string;
    cause: unknown;
  }) {
    const where = params.functionName ? `${params.functionName} on ${params.contract ?? "the contract"}` : "the contract call";
    const shown = Object.entries(params.args).map(([k, v]) => `${k}=${String(v)}`).join(", ");
    const hint = hints[params.errorName];
    const details = { errorName: params.errorName, args: Object.fromEntries(Object.entries(params.args).map(([k, v]) => [k, String(v)])), contract: params.contract, functionName: params.functionName };
    super("CONTRACT_REVERT", `${where} reverted with ${params.errorName}(${shown})${hint ? `: ${hint}` : ""}`, { cause: params.cause, details });
    this.errorName = params.errorName;
    this.args = params.args;
    this.contract = params.contract;
    this.functionName = params.functionName;
  }
}

interface CallContext {
  contractAddress?: Address;
  functionName?: string;
}

/** The ContractRevertError inside `err`, or undefined when `err` is not a decoded contract revert. */
export function decodeContractRevert(err: unknown): ContractRevertError | undefined {
  if (err instanceof ContractRevertError) return err;
  if (!(err instanceof BaseError)) return undefined;
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
  if (!(reverted instanceof ContractFunctionRevertedError)) return undefined;
  const context = err as unknown as CallContext;
  const data = reverted.data;
  let errorName: string;
  const args: Record<string, unknown> = {};
  if (data) {
    errorName = data.errorName;
    const inputs = "inputs" in data.abiItem ? data.abiItem.inputs : [];
    (data.args ?? []).forEach((value, i) => {
      args[inputs[i]?.name || String(i)] = value;
    });
  } else if (reverted.reason !== undefined) {
    errorName = "Error";
    args.reason = reverted.reason;
  } else {
    errorName = reverted.signature ? `unknown error ${reverted.signature}` : "unknown revert";
  }
  return new ContractRevertError({
    errorName,
    args,
    ...(context.contractAddress ? { contract: context.contractAddress } : {}),
    ...(context.functionName ? { functionName: context.functionName } : {}),
    cause: err,
  });
}

/** Rethrows a contract revert as a ContractRevertError; other errors pass through unchanged. */
export function rethrowContractRevert(err: unknown): never {
  throw decodeContractRevert(err) ?? err;
}
