/** A VaultDirectory over a devnet's vault gateway (src/host/vault-http.ts): what the CLI uses from another process. */
import type { Address } from "viem";
import { vaultJsonDecode, vaultJsonEncode } from "../host/vault-http.ts";
import type { VaultDirectory, VaultSlotApi } from "../host/vault-host.ts";
import { CloisterError } from "../util/base-error.ts";

/** A refusal or failure the gateway reported, with the enclave's or host's code. */
export class VaultRemoteError extends CloisterError<string> {}

export function httpVaultDirectory(baseUrl: string): VaultDirectory {
  const call = async (enclave: Address, method: string, params: unknown): Promise<never> => {
    let response: Response;
    try {
      response = await fetch(`${baseUrl}/v1/vault/${method}`, { method: "POST", headers: { "content-type": "application/json" }, body: vaultJsonEncode({ enclave, params }) });
    } catch (cause) {
      throw new VaultRemoteError("PEER_UNREACHABLE", `the vault gateway ${baseUrl} does not answer; is the devnet up?`, { cause });
    }
    const answer = vaultJsonDecode(await response.text()) as { result?: unknown; error?: { code: string; message: string } };
    if (answer.error) throw new VaultRemoteError(answer.error.code, answer.error.message);
    return answer.result as never;
  };
  return {
    node(enclave: Address): VaultSlotApi {
      return {
        store: (p) => call(enclave, "store", p),
        storeMany: (p) => call(enclave, "storeMany", p),
        retrieve: (p) => call(enclave, "retrieve", p),
        status: () => call(enclave, "status", {}),
        held: (p) => call(enclave, "held", p),
        exportShares: (p) => call(enclave, "exportShares", p),
      };
    },
  };
}
