/**
 * The simulated TEE provider ("sim"): evidence in the real SGX DCAP v3
 * format, chained to the simulated vendor root. It runs ordinary code with no
 * isolation, so the evidence proves only that the holder of the simulated
 * PKI vouched for a measurement. Verifiers flag it simulated; the production
 * policy refuses it; every description it prints says SIMULATED.
 */
import { createHash } from "node:crypto";
import type { AttestationProvider, DcapCollateral, Evidence, TeeType } from "../types.ts";
import { buildSimCollateral } from "./collateral.ts";
import { getSimPlatform, loadOrCreateSimPki, type SimPki } from "./pki.ts";
import { buildSgxQuoteV3, SimQuoteError } from "./quote.ts";

export { enclaveCodeMeasurement } from "./measurement.ts";

/** MRSIGNER used when the caller names no signer. */
export const SIM_DEFAULT_MRSIGNER = createHash("sha256").update("Cloister SIMULATED enclave signer").digest("hex");

const COLLATERAL_REFRESH_MS = 3_600_000;

export interface SimulatedProviderOptions {
  /** Directory of the network's simulated PKI (loaded or created there). */
  pkiDir?: string;
  /** An already loaded PKI (takes precedence over pkiDir). */
  pki?: SimPki;
  /** MRENCLAVE, 32 bytes hex: normally enclaveCodeMeasurement(code files). */
  mrEnclave: string;
  /** MRSIGNER, 32 bytes hex (default SIM_DEFAULT_MRSIGNER). */
  mrSigner?: string;
  isvProdId?: number;
  isvSvn?: number;
  /** Marks the enclave as a debug enclave (ATTRIBUTES.DEBUG). */
  debug?: boolean;
  /** Simulated platform name (default: the PKI's first platform). */
  platform?: string;
  /** Clock for collateral dates (tests). */
  now?: () => Date;
}

export class SimulatedProvider implements AttestationProvider {
  readonly name = "sim";
  readonly teeType: TeeType = "SGX";
  readonly simulated = true;
  readonly #options: SimulatedProviderOptions;
  readonly #mrEnclave: string;
  readonly #mrSigner: string;
  #pki: Promise<SimPki> | undefined;
  #collateral: { value: DcapCollateral; at: number; revoked: number } | undefined;

  constructor(options: SimulatedProviderOptions) {
    if (!options.pki && !options.pkiDir) throw new SimQuoteError("SIM_PROVIDER_NO_PKI", "SimulatedProvider needs pkiDir (or pki): the simulated PKI the network shares.");
    for (const [name, value] of [["mrEnclave", options.mrEnclave], ["mrSigner", options.mrSigner ?? SIM_DEFAULT_MRSIGNER]] as const) {
      if (!/^[0-9a-fA-F]{64}$/.test(value)) throw new SimQuoteError("SIM_QUOTE_BAD_INPUT", `${name} must be 32 bytes of hex (64 characters), got "${value}".`);
    }
    this.#options = options;
    this.#mrEnclave = options.mrEnclave.toLowerCase();
    this.#mrSigner = (options.mrSigner ?? SIM_DEFAULT_MRSIGNER).toLowerCase();
    this.#pki = options.pki ? Promise.resolve(options.pki) : undefined;
  }

  async measurement(): Promise<string> {
    return this.#mrEnclave;
  }

  /** One line for logs and displays; always says SIMULATED. */
  describe(): string {
    return `SIMULATED SGX enclave (Cloister simulated TEE, not hardware-protected) mrenclave=${this.#mrEnclave} mrsigner=${this.#mrSigner}${this.#options.debug ? " DEBUG" : ""}`;
  }

  async attest(reportData: Uint8Array): Promise<Evidence> {
    const pki = await this.#loadPki();
    const quote = buildSgxQuoteV3(
      {
        mrEnclave: this.#mrEnclave,
        mrSigner: this.#mrSigner,
        isvProdId: this.#options.isvProdId ?? 0,
        isvSvn: this.#options.isvSvn ?? 0,
        debug: this.#options.debug ?? false,
        reportData,
      },
      pki,
      getSimPlatform(pki, this.#options.platform),
    );
    return { teeType: "SGX", quote, collateral: await this.#currentCollateral(pki) };
  }

  #loadPki(): Promise<SimPki> {
    this.#pki ??= loadOrCreateSimPki(this.#options.pkiDir as string);
    return this.#pki;
  }

  // Collateral is reissued hourly or after a revocation, not per quote.
  async #currentCollateral(pki: SimPki): Promise<DcapCollateral> {
    const now = (this.#options.now ?? (() => new Date()))();
    const cached = this.#collateral;
    if (cached && cached.revoked === pki.revoked.length && now.getTime() - cached.at < COLLATERAL_REFRESH_MS && now.getTime() >= cached.at) {
      return cached.value;
    }
    const value = await buildSimCollateral(pki, { now });
    this.#collateral = { value, at: now.getTime(), revoked: pki.revoked.length };
    return value;
  }
}
