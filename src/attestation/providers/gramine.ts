/**
 * Gramine-SGX attestation through its pseudo-files: write the 64-byte report
 * data to /dev/attestation/user_report_data, read the DCAP quote from
 * /dev/attestation/quote. The root is configurable so tests can run against a
 * fake tree. Collateral is not included: the verifier fetches it.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { AttestationProvider, Evidence, TeeType } from "../types.ts";
import { checkReportData, isErrno, ProviderError, ProviderUnavailableError } from "./errors.ts";

export interface GramineProviderOptions {
  /** Filesystem root holding dev/attestation (default "/"). */
  root?: string;
}

const SGX_QUOTE_MIN_LEN = 48 + 384 + 4;
const MRENCLAVE_OFFSET_IN_QUOTE = 48 + 64;

export class GramineProvider implements AttestationProvider {
  readonly name = "gramine";
  readonly teeType: TeeType = "SGX";
  readonly simulated = false;
  readonly #dir: string;
  // Gramine's write-then-read protocol is not safe to interleave within a process.
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: GramineProviderOptions = {}) {
    this.#dir = join(options.root ?? "/", "dev", "attestation");
  }

  async measurement(): Promise<string> {
    try {
      // sgx_target_info_t starts with the enclave's own MRENCLAVE.
      const targetInfo = await readFile(join(this.#dir, "my_target_info"));
      if (targetInfo.length >= 32) return targetInfo.subarray(0, 32).toString("hex");
    } catch (error) {
      if (!isErrno(error, "ENOENT")) throw this.#ioError("my_target_info", error);
    }
    const evidence = await this.attest(new Uint8Array(64));
    if (evidence.teeType === "SEV-SNP") throw new ProviderError("PROVIDER_BAD_OUTPUT", "Gramine returned non-SGX evidence.");
    return Buffer.from(evidence.quote.subarray(MRENCLAVE_OFFSET_IN_QUOTE, MRENCLAVE_OFFSET_IN_QUOTE + 32)).toString("hex");
  }

  async attest(reportData: Uint8Array): Promise<Evidence> {
    checkReportData(reportData);
    const run = this.#queue.then(() => this.#attestNow(reportData));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #attestNow(reportData: Uint8Array): Promise<Evidence> {
    await this.#checkType();
    try {
      await writeFile(join(this.#dir, "user_report_data"), reportData);
    } catch (error) {
      if (isErrno(error, "ENOENT")) throw new ProviderUnavailableError(this.name, join(this.#dir, "user_report_data"), "Gramine's /dev/attestation/user_report_data does not exist", { cause: error });
      throw this.#ioError("user_report_data", error);
    }
    let quote: Buffer;
    try {
      quote = await readFile(join(this.#dir, "quote"));
    } catch (error) {
      if (isErrno(error, "ENOENT")) throw new ProviderUnavailableError(this.name, join(this.#dir, "quote"), "Gramine's /dev/attestation/quote does not exist", { cause: error });
      throw this.#ioError("quote", error);
    }
    if (quote.length < SGX_QUOTE_MIN_LEN || quote.readUInt16LE(0) !== 3) {
      throw new ProviderError("PROVIDER_BAD_OUTPUT", `Gramine returned ${quote.length} bytes that are not an SGX DCAP v3 quote; check the manifest's sgx.remote_attestation = "dcap".`);
    }
    return { teeType: "SGX", quote: new Uint8Array(quote) };
  }

  /** Gramine names its attestation mode in attestation_type; only DCAP quotes are usable. */
  async #checkType(): Promise<void> {
    const path = join(this.#dir, "attestation_type");
    let type: string;
    try {
      type = (await readFile(path, "utf8")).trim();
    } catch (error) {
      if (isErrno(error, "ENOENT")) throw new ProviderUnavailableError(this.name, path, "no Gramine attestation interface (not running inside Gramine-SGX)", { cause: error });
      throw this.#ioError("attestation_type", error);
    }
    if (type !== "dcap") {
      throw new ProviderUnavailableError(this.name, path, `Gramine's attestation type is "${type}", not "dcap" (set sgx.remote_attestation = "dcap" in the manifest)`);
    }
  }

  #ioError(file: string, error: unknown): ProviderError {
    return new ProviderError("PROVIDER_IO", `Gramine ${join(this.#dir, file)}: ${(error as Error).message}`, { cause: error });
  }
}
