/** Builds the attestation provider a configuration names. */
import type { AttestationProvider } from "../types.ts";
import { SimulatedProvider, type SimulatedProviderOptions } from "../sim/provider.ts";
import { ProviderError } from "./errors.ts";
import { GramineProvider, type GramineProviderOptions } from "./gramine.ts";
import { TsmProvider, type TsmProviderOptions } from "./tsm.ts";

export { ProviderError, ProviderUnavailableError, type ProviderErrorCode } from "./errors.ts";
export { GramineProvider, type GramineProviderOptions } from "./gramine.ts";
export { TsmProvider, type TsmProviderOptions } from "./tsm.ts";
export { SimulatedProvider, type SimulatedProviderOptions } from "../sim/provider.ts";

export type ProviderConfig =
  | ({ provider: "sim" } & SimulatedProviderOptions)
  | ({ provider: "gramine" } & GramineProviderOptions)
  | ({ provider: "tsm" } & TsmProviderOptions);

export async function createProvider(config: ProviderConfig): Promise<AttestationProvider> {
  switch (config.provider) {
    case "sim":
      return new SimulatedProvider(config);
    case "gramine":
      return new GramineProvider(config);
    case "tsm":
      return TsmProvider.open(config);
    default:
      throw new ProviderError("PROVIDER_CONFIG", `Unknown attestation provider ${JSON.stringify((config as { provider: unknown }).provider)}: use "sim", "gramine" or "tsm".`);
  }
}
