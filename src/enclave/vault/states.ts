/**
 * The vault enclave's states, MarbleRun style: a small explicit machine, every
 * transition named, anything else refused with WRONG_STATE.
 *
 *   (new data dir) ──► bootstrapping ──bootstrapDone──► recovering
 *   (restart, sealed state found) ──────────────────────► recovering
 *   recovering ──caughtUp──► serving
 *
 * - bootstrapping: a new enclave fills its slot from peers (paged, resumable);
 *   it accepts imports and new stores, answers nobody.
 * - recovering: it crawls vault events from its sealed checkpoint and fetches
 *   what it missed; it accepts imports and stores, answers nobody, since it
 *   may hold stale versions.
 * - serving: it answers owners' retrievals and peers' fetches.
 *
 * A restart always goes through recovering, so an enclave that was down never
 * serves before it has crawled what happened meanwhile.
 */
import { VaultEnclaveError } from "./errors.ts";

export type VaultState = "bootstrapping" | "recovering" | "serving";
export type VaultTransition = "bootstrapDone" | "caughtUp";

const transitions: Record<VaultState, Partial<Record<VaultTransition, VaultState>>> = {
  bootstrapping: { bootstrapDone: "recovering" },
  recovering: { caughtUp: "serving" },
  serving: { caughtUp: "serving" },
};

/** What each state allows besides the transitions. */
const allowed: Record<VaultState, ReadonlySet<string>> = {
  bootstrapping: new Set(["store", "importShares", "confirmations", "markConfirmed", "status", "held", "drop"]),
  recovering: new Set(["store", "importShares", "confirmations", "markConfirmed", "status", "held", "drop", "advance"]),
  serving: new Set(["store", "importShares", "confirmations", "markConfirmed", "status", "held", "drop", "advance", "retrieve", "exportShares"]),
};

export class VaultStateMachine {
  #state: VaultState;

  constructor(initial: VaultState) {
    this.#state = initial;
  }

  get state(): VaultState {
    return this.#state;
  }

  /** Refuses `operation` unless the current state allows it. */
  require(operation: string): void {
    if (!allowed[this.#state].has(operation)) {
      throw new VaultEnclaveError("WRONG_STATE", `the vault enclave is ${this.#state} and does not ${operation} in that state; wait until it is serving`, {
        details: { state: this.#state, operation },
      });
    }
  }

  fire(transition: VaultTransition): VaultState {
    const next = transitions[this.#state][transition];
    if (!next) {
      throw new VaultEnclaveError("WRONG_STATE", `the vault enclave is ${this.#state}; ${transition} is not a transition from it`, { details: { state: this.#state, transition } });
    }
    this.#state = next;
    return next;
  }
}
