/**
 * The enclave's attestation provider, chosen by the init request's config
 * (`createProvider` in src/attestation/providers). Loaded lazily so the
 * enclave starts (and seals, signs, runs tasks) even where a provider cannot
 * load, and reports ATTESTATION_UNAVAILABLE only when evidence is asked for.
 */
import type * as Providers from "../attestation/providers/index.ts";
import type { AttestationProvider, TeeType } from "../attestation/types.ts";
import type { AttestationConfig } from "./call-gate.ts";
import { EnclaveError } from "./errors.ts";

type ProvidersModule = typeof Providers;
const PROVIDERS_MODULE = new URL("../attestation/providers/index.ts", import.meta.url).href;

export async function loadAttestationProvider(config: AttestationConfig, measurement: string): Promise<AttestationProvider | EnclaveError> {
  let mod: ProvidersModule;
  try {
    mod = (await import(PROVIDERS_MODULE)) as ProvidersModule;
  } catch (cause) {
    return new EnclaveError("ATTESTATION_UNAVAILABLE", `attestation providers could not be loaded: ${String(cause)}`, { cause });
  }
  // The simulated provider attests the measurement the enclave computed of itself.
  const providerConfig = (config.provider === "sim" ? { mrEnclave: measurement, ...config } : config) as Providers.ProviderConfig;
  try {
    return await mod.createProvider(providerConfig);
  } catch (cause) {
    return new EnclaveError("ATTESTATION_UNAVAILABLE", `attestation provider "${config.provider}" failed to start: ${String(cause)}`, { cause });
  }
}

/** What the enclave reports about its TEE when the provider could not be loaded. */
export function fallbackTee(config: AttestationConfig): { teeType: TeeType; simulated: boolean } {
  return { teeType: "SGX", simulated: config.provider === "sim" };
}
