/** What a node needs of the attestation service, in process (service.ts) or over HTTP (http-client.ts). */
import type { Address, Hex } from "viem";

export interface AttestationServiceClient {
  challenge(): Promise<Hex> | Hex;
  register(request: { signer: Address; hpkePublicKey: Hex; provenanceKey: Hex; tlsKey: Hex; operator: Address; evidenceCid: string; nonce: Hex }): Promise<{ expiry: bigint; transactionHash: Hex }>;
}
