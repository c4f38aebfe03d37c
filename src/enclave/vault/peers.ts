/**
 * Share transfer between vault enclaves over mutual attested TLS (the
 * enclave network's inbound listener, src/enclave/net/listen.ts): the TLS
 * session terminates in both enclaves, each verifies the other's attested
 * certificate against a policy that accepts only this vault image's
 * measurement, and the exporting enclave takes the requester's identity from
 * the certificate's signer claim (bound by its evidence), then applies the
 * same chain checks as exportShares (same slot of another cluster, active,
 * same measurement in the registry). The shares inside the session are still
 * HPKE-sealed to the requester's registered key, so the session adds hiding
 * which token ids are exchanged, and peer authentication by attestation
 * rather than by the chain alone.
 *
 * Messages (length-prefixed, src/enclave/net/messages.ts), JSON:
 *   → { tokenIds: ["<decimal>", …] }
 *   ← { items: [{ tokenId, version, descriptor, enc, ciphertext }], missing: [...] } | { error: { code, message } }
 */
import type { Address } from "viem";
import type { EvidenceVerifier } from "../../attestation/atls/certificate.ts";
import { fromHex, toHex } from "../../crypto/bytes.ts";
import type { EnclaveNet } from "../net/connect.ts";
import type { EnclaveListener } from "../net/listen.ts";
import { createMessageStream } from "../net/messages.ts";
import { VaultEnclaveError } from "./errors.ts";
import type { TransferItem, VaultService } from "./service.ts";

const MAX_MESSAGE = 64 * 1024 * 1024;

interface WireItem {
  tokenId: string;
  version: string;
  descriptor: unknown;
  enc: string;
  ciphertext: string;
}

function toWire(items: TransferItem[]): WireItem[] {
  return items.map((i) => ({ tokenId: i.tokenId.toString(), version: i.version.toString(), descriptor: i.descriptor, enc: toHex(i.envelope.enc), ciphertext: toHex(i.envelope.ciphertext) }));
}

/** Listens for peers and serves their fetches; returns the listener (its address is what the host publishes). */
export async function servePeers(net: EnclaveNet, verify: EvidenceVerifier, service: VaultService): Promise<EnclaveListener> {
  const listener = await net.listen({ peer: { kind: "attested", verify } });
  listener.onConnection((conn) => {
    const stream = createMessageStream(conn.socket, { maxMessageBytes: MAX_MESSAGE });
    void (async () => {
      try {
        for (;;) {
          const raw = await stream.receive();
          if (raw === null) break;
          let reply: unknown;
          try {
            const requester = conn.peer.certificate.signer as Address | undefined;
            if (!requester) throw new VaultEnclaveError("PEER_REFUSED", "the peer's attested certificate names no signer");
            const { tokenIds } = JSON.parse(new TextDecoder().decode(raw)) as { tokenIds: string[] };
            if (!Array.isArray(tokenIds) || tokenIds.length > 10_000 || !tokenIds.every((t) => typeof t === "string" && /^\d{1,78}$/.test(t))) {
              throw new VaultEnclaveError("BAD_REQUEST", "a peer fetch names up to 10,000 decimal token ids");
            }
            const out = await service.exportShares({ requester, tokenIds: tokenIds.map(BigInt) });
            reply = { items: toWire(out.items), missing: out.missing.map(String) };
          } catch (e) {
            const code = (e as { code?: unknown }).code;
            reply = { error: { code: typeof code === "string" ? code : "INTERNAL", message: e instanceof VaultEnclaveError ? e.message : "the peer could not serve the fetch" } };
          }
          await stream.send(new TextEncoder().encode(JSON.stringify(reply)));
        }
        await stream.end();
      } catch {
        conn.socket.destroy();
      }
    })();
  });
  return listener;
}

/** Fetches `tokenIds` from the peer listening at `address`, which must present `peer`'s signer; imports what it sends. */
export async function fetchFromPeer(net: EnclaveNet, verify: EvidenceVerifier, service: VaultService, p: { host: string; port: number; peer: Address; tokenIds: bigint[] }) {
  const { socket, peer } = await net.connect({ host: p.host, port: p.port, pin: { kind: "attested", verify } });
  try {
    const signer = peer?.certificate.signer;
    if (!signer || signer.toLowerCase() !== p.peer.toLowerCase()) {
      throw new VaultEnclaveError("PEER_REFUSED", `the enclave at ${p.host}:${p.port} is not ${p.peer}`, { details: { expected: p.peer, presented: signer ?? null } });
    }
    const stream = createMessageStream(socket, { maxMessageBytes: MAX_MESSAGE });
    await stream.send(new TextEncoder().encode(JSON.stringify({ tokenIds: p.tokenIds.map(String) })));
    const raw = await stream.receive();
    await stream.end();
    if (raw === null) throw new VaultEnclaveError("PEER_REFUSED", "the peer closed the session without answering");
    const answer = JSON.parse(new TextDecoder().decode(raw)) as { items?: WireItem[]; error?: { code: string; message: string } };
    if (answer.error || !answer.items) throw new VaultEnclaveError("PEER_REFUSED", `the peer refused the fetch (${answer.error?.code ?? "no items"})`, { details: { code: answer.error?.code ?? null } });
    const items = answer.items.map((i) => ({ descriptor: i.descriptor, envelope: { enc: fromHex(i.enc), ciphertext: fromHex(i.ciphertext) } }));
    return await service.importShares({ items });
  } finally {
    socket.destroy();
  }
}
