/**
 * The node's registration as an explicit state machine. A registration lasts a fixed time from the block
 * that recorded it (24 h by default); the node must re-attest before it ends, or its enclave can no longer
 * accept or complete tasks. The states:
 *
 *   attesting   the first attestation is under way (no registration yet)
 *   registered  the chain holds an unexpired registration and its renewal is not due yet
 *   renewing    the renewal is due (or under way, or being retried); the registration still holds
 *   expired     the chain's time passed the expiry; the node keeps trying to attest again
 *   revoked     the attester revoked the enclave; final (a revoked signer cannot be registered again)
 *
 * The only way to change state is `apply` with one of the events below, along the table `transitions`;
 * anything else throws RegistrationTransitionError. Times are the chain's (block timestamps, Unix seconds):
 * the expiry is the registry's, and only the chain's clock says whether it has passed.
 */
import { CloisterError } from "../util/base-error.ts";

export type RegistrationState = "attesting" | "registered" | "renewing" | "expired" | "revoked";

export const registrationStates: readonly RegistrationState[] = ["attesting", "registered", "renewing", "expired", "revoked"];

export type RegistrationEvent =
  /** The chain shows a registration of this enclave: recorded in a block stamped `registeredAt`, ending at `expiry`. */
  | { type: "registered"; registeredAt: bigint; expiry: bigint }
  /** The chain's time reached the renewal point. */
  | { type: "renewal-due" }
  /** An attestation or registration attempt failed; it is retried. */
  | { type: "attempt-failed"; error: string }
  /** The chain's time reached the expiry. */
  | { type: "expired" }
  /** The registry's EnclaveRevoked event for this enclave. */
  | { type: "revoked" };

const transitions: Record<RegistrationState, Partial<Record<RegistrationEvent["type"], RegistrationState>>> = {
  attesting: { registered: "registered", "attempt-failed": "attesting", revoked: "revoked" },
  // "registered" again: the chain shows a newer registration (renewed by another process of this operator).
  registered: { registered: "registered", "renewal-due": "renewing", expired: "expired", revoked: "revoked" },
  renewing: { registered: "registered", "attempt-failed": "renewing", expired: "expired", revoked: "revoked" },
  expired: { registered: "registered", "attempt-failed": "expired", revoked: "revoked" },
  revoked: {},
};

export interface RegistrationSnapshot {
  state: RegistrationState;
  /** Block timestamp of the registration's block, and its expiry (Unix seconds); undefined before the first. */
  registeredAt?: bigint;
  expiry?: bigint;
  /** Failed attempts since the last success. */
  failures: number;
  lastError?: string;
}

export class RegistrationTransitionError extends CloisterError<"REGISTRATION_TRANSITION"> {
  readonly from: RegistrationState;
  readonly event: RegistrationEvent["type"];
  constructor(from: RegistrationState, event: RegistrationEvent["type"]) {
    const allowed = Object.keys(transitions[from]);
    super("REGISTRATION_TRANSITION", `the registration cannot take event "${event}" in state "${from}" (allowed: ${allowed.length ? allowed.join(", ") : "none, the state is final"}); this is a bug in the node's registration driver`, { details: { from, event } });
    this.from = from;
    this.event = event;
  }
}

/** When the node re-attests, as a fraction of the registration's lifetime (2/3: 16 h of 24). */
export const defaultRenewAtFraction = 2 / 3;

export class AttestationLifecycle {
  #snapshot: RegistrationSnapshot = { state: "attesting", failures: 0 };
  readonly #renewAtFraction: number;
  readonly #onTransition: ((from: RegistrationState, to: RegistrationSnapshot, event: RegistrationEvent) => void) | undefined;

  constructor(options: { renewAtFraction?: number; onTransition?: (from: RegistrationState, to: RegistrationSnapshot, event: RegistrationEvent) => void } = {}) {
    const fraction = options.renewAtFraction ?? defaultRenewAtFraction;
    if (!(fraction > 0 && fraction < 1)) throw new RangeError(`renewAtFraction must be between 0 and 1 (exclusive), got ${fraction}`);
    this.#renewAtFraction = fraction;
    this.#onTransition = options.onTransition;
  }

  get state(): RegistrationState {
    return this.#snapshot.state;
  }

  get snapshot(): Readonly<RegistrationSnapshot> {
    return this.#snapshot;
  }

  /** The chain time at which the renewal is due; undefined without a registration. */
  get renewAt(): bigint | undefined {
    const { registeredAt, expiry } = this.#snapshot;
    if (registeredAt === undefined || expiry === undefined) return undefined;
    const lifetime = expiry > registeredAt ? expiry - registeredAt : 0n;
    // In billionths: exact to the second for any lifetime below 30 years.
    return registeredAt + (lifetime * BigInt(Math.round(this.#renewAtFraction * 1e9))) / 1_000_000_000n;
  }

  apply(event: RegistrationEvent): Readonly<RegistrationSnapshot> {
    const from = this.#snapshot.state;
    const to = transitions[from][event.type];
    if (to === undefined) throw new RegistrationTransitionError(from, event.type);
    const previous = this.#snapshot;
    switch (event.type) {
      case "registered":
        this.#snapshot = { state: to, registeredAt: event.registeredAt, expiry: event.expiry, failures: 0 };
        break;
      case "attempt-failed":
        this.#snapshot = { ...previous, state: to, failures: previous.failures + 1, lastError: event.error };
        break;
      default:
        this.#snapshot = { ...previous, state: to };
    }
    this.#onTransition?.(from, this.#snapshot, event);
    return this.#snapshot;
  }
}

/**
 * Why the node must not accept a task now, or undefined when it may: nothing while it holds no registration
 * (attesting, expired, revoked), and, while the renewal is due and not done yet, nothing whose deadline (`deadline`, chain
 * time) falls after the registration's expiry (a completion from an expired enclave is refused on chain).
 * While registered, the renewal is due well before the expiry, so a longer task is taken.
 */
export function refusalToAccept(snapshot: Readonly<RegistrationSnapshot>, deadline: bigint): string | undefined {
  switch (snapshot.state) {
    case "attesting":
      return "this node's enclave is not registered yet";
    case "expired":
      return `this node's enclave registration expired at ${snapshot.expiry} and is not renewed yet (${snapshot.lastError ?? "renewing"})`;
    case "revoked":
      return "this node's enclave was revoked in the registry";
    case "renewing":
      if (snapshot.expiry !== undefined && deadline > snapshot.expiry) {
        return `the task's deadline ${deadline} falls after this node's registration expiry ${snapshot.expiry}, and its renewal has not succeeded yet${snapshot.lastError ? ` (${snapshot.lastError})` : ""}`;
      }
      return undefined;
    case "registered":
      return undefined;
  }
}
