/** Errors of the hardware attestation providers. */
import { CloisterError } from "../../util/base-error.ts";

export type ProviderErrorCode = "PROVIDER_UNAVAILABLE" | "PROVIDER_IO" | "PROVIDER_BAD_OUTPUT" | "PROVIDER_BAD_INPUT" | "PROVIDER_CONFIG";

export class ProviderError extends CloisterError<ProviderErrorCode> {}

/** The TEE interface the provider needs does not exist here (not inside that kind of enclave). */
export class ProviderUnavailableError extends ProviderError {
  readonly provider: string;
  readonly path: string;
  constructor(provider: string, path: string, detail: string, options?: { cause?: unknown }) {
    super("PROVIDER_UNAVAILABLE", `The "${provider}" attestation provider is not available on this machine: ${detail} (${path}). Run inside that TEE, point the provider's root at the right tree, or use the "sim" provider for development.`, { cause: options?.cause, details: { provider, path } });
    this.provider = provider;
    this.path = path;
  }
}

export function checkReportData(reportData: Uint8Array): void {
  if (!(reportData instanceof Uint8Array) || reportData.length !== 64) {
    throw new ProviderError("PROVIDER_BAD_INPUT", `report data must be exactly 64 bytes, got ${(reportData as Uint8Array | undefined)?.length}.`);
  }
}

export function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}
