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
 * Messages (length-prefixed, src/enclave/net/messages.ts), JSON, any number
 * per session, answered in order:
 *   → { tokenIds: ["<decimal>", …] }                 (replication: these tokens)
 *   → { page: { after: "<decimal>" | null, limit } }  (bootstrap: the peer's next holdings)
 *   ← { items: [{ tokenId, version, descriptor, enc, ciphertext }], missing: [...], last: "<decimal>" | null }
 *     | { error: { code, message } }
 *
 * A fetching enclave keeps one session per peer open (PeerSessions) and
 * reuses it for later fetches, so a crawl does not pay a handshake (two
 * evidence checks) per fetch; a bootstrap pipelines its pages on one session:
 * the peer seals page n + 1 while this enclave imports page n.
 */
import type { Duplex } from "node:stream";
import type { Address } from "viem";
import type { EvidenceVerifier } from "../../attestation/atls/certificate.ts";
import { fromHex, toHex } from "../../crypto/bytes.ts";
import type { EnclaveNet } from "../net/connect.ts";
import type { EnclaveListener } from "../net/listen.ts";
import { createMessageStream, type MessageStream } from "../net/messages.ts";
import { VaultEnclaveError } from "./errors.ts";
import type { SealedEnvelope, TransferItem, VaultService } from "./service.ts";

const MAX_MESSAGE = 64 * 1024 * 1024;

interface WireItem {
  tokenId: string;
  version: string;
  descriptor: unknown;
  enc: string;
  ciphertext: string;
  seq: number;
}

function toWire(items: TransferItem[]): WireItem[] {
  return items.map((i) => ({ tokenId: i.tokenId.toString(), version: i.version.toString(), descriptor: i.descriptor, enc: toHex(i.envelope.enc), ciphertext: toHex(i.envelope.ciphertext), seq: i.envelope.seq }));
}

/** What a peer asked for: named tokens, or a page of this enclave's holdings after a cursor. */
function parseRequest(raw: Uint8Array): { tokenIds: bigint[] } | { after: bigint | null; limit: number } {
  const m = JSON.parse(new TextDecoder().decode(raw)) as { tokenIds?: unknown; page?: { after?: unknown; limit?: unknown } };
  const decimal = (t: unknown): t is string => typeof t === "string" && /^\d{1,78}$/.test(t);
  if (m.page !== undefined) {
    const { after, limit } = m.page;
    if ((after !== null && !decimal(after)) || typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new VaultEnclaveError("BAD_REQUEST", "a peer page request is { after: decimal token id or null, limit: 1 to 10,000 }");
    }
    return { after: after === null ? null : BigInt(after), limit };
  }
  if (!Array.isArray(m.tokenIds) || m.tokenIds.length > 10_000 || !m.tokenIds.every(decimal)) throw new VaultEnclaveError("BAD_REQUEST", "a peer fetch names up to 10,000 decimal token ids");
  return { tokenIds: m.tokenIds.map(BigInt) };
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
            const request = parseRequest(raw);
            // A page lists this enclave's own holdings (public on chain); exportShares decides, from the chain, whether they go out.
            const tokenIds = "tokenIds" in request ? request.tokenIds : service.held(request).tokens.map((t) => t.tokenId);
            // An empty page ends a bootstrap, whatever state this enclave is in (a new cluster's members bootstrap from each other).
            if (tokenIds.length === 0) reply = { items: [], missing: [], last: null };
            else {
              const out = await service.exportShares({ requester, tokenIds });
              reply = { items: toWire(out.items), missing: out.missing.map(String), last: String(tokenIds.at(-1)) };
            }
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

interface PeerAddress {
  host: string;
  port: number;
  peer: Address;
}

/** One mutual-aTLS session to a peer whose certificate names the signer asked for. */
async function openSession(net: EnclaveNet, verify: EvidenceVerifier, p: PeerAddress): Promise<{ stream: MessageStream; socket: Duplex }> {
  const { socket, peer } = await net.connect({ host: p.host, port: p.port, pin: { kind: "attested", verify } });
  const signer = peer?.certificate.signer;
  if (!signer || signer.toLowerCase() !== p.peer.toLowerCase()) {
    socket.destroy();
    throw new VaultEnclaveError("PEER_REFUSED", `the enclave at ${p.host}:${p.port} is not ${p.peer}`, { details: { expected: p.peer, presented: signer ?? null } });
  }
  return { stream: createMessageStream(socket, { maxMessageBytes: MAX_MESSAGE }), socket };
}

/** A peer's answer: the sealed items, or PEER_REFUSED with its code. */
function parseAnswer(raw: Uint8Array | null): { items: { descriptor: unknown; envelope: SealedEnvelope }[]; last: bigint | null } {
  if (raw === null) throw new VaultEnclaveError("PEER_REFUSED", "the peer closed the session without answering");
  const answer = JSON.parse(new TextDecoder().decode(raw)) as { items?: WireItem[]; last?: string | null; error?: { code: string; message: string } };
  if (answer.error || !answer.items) throw new VaultEnclaveError("PEER_REFUSED", `the peer refused the fetch (${answer.error?.code ?? "no items"})`, { details: { code: answer.error?.code ?? null } });
  const last = typeof answer.last === "string" && /^\d{1,78}$/.test(answer.last) ? BigInt(answer.last) : null;
  return { items: answer.items.map((i) => ({ descriptor: i.descriptor, envelope: { enc: fromHex(i.enc), ciphertext: fromHex(i.ciphertext), seq: wireSeq(i.seq) } })), last };
}

/** An envelope's sequence number as a peer sent it; anything else than a safe non-negative integer is refused. */
function wireSeq(seq: unknown): number {
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) throw new VaultEnclaveError("PEER_REFUSED", "the peer sent a share envelope without a valid sequence number");
  return seq;
}

/** How long an unused session to a peer stays open. */
const IDLE_MS = 30_000;

/**
 * Sessions to peers kept open between fetches, one per (address, signer). Requests on one session go one at a
 * time; a session that fails (the peer restarted, the relay dropped it) is closed and the request is tried once
 * more on a new one. Every request is still checked by the peer against the chain, and every share by this
 * enclave against its commitment: a kept session only saves the handshake.
 */
export class PeerSessions {
  readonly #net: EnclaveNet;
  readonly #verify: EvidenceVerifier;
  readonly #open = new Map<string, { session: Promise<{ stream: MessageStream; socket: Duplex }>; queue: Promise<unknown>; idle?: NodeJS.Timeout }>();

  constructor(net: EnclaveNet, verify: EvidenceVerifier) {
    this.#net = net;
    this.#verify = verify;
  }

  /** Fetches `tokenIds` from the peer listening at host:port, which must present `peer`'s signer; imports what it sends. */
  async fetch(service: VaultService, p: PeerAddress & { tokenIds: bigint[]; atBlock?: bigint }) {
    const message = new TextEncoder().encode(JSON.stringify({ tokenIds: p.tokenIds.map(String) }));
    const answer = await this.#exchange(p, message).catch((e: unknown) => {
      if (e instanceof VaultEnclaveError) throw e;
      // A kept session the peer or the relay closed meanwhile: once more on a new one.
      return this.#exchange(p, message).catch((again: unknown) => {
        if (again instanceof VaultEnclaveError) throw again;
        return null;
      });
    });
    return service.importShares({ items: parseAnswer(answer).items, ...(p.atBlock !== undefined ? { atBlock: p.atBlock } : {}) });
  }

  async #exchange(p: PeerAddress, message: Uint8Array): Promise<Uint8Array> {
    const key = `${p.host}:${p.port}:${p.peer.toLowerCase()}`;
    let entry = this.#open.get(key);
    if (!entry) {
      entry = { session: openSession(this.#net, this.#verify, p), queue: Promise.resolve() };
      this.#open.set(key, entry);
    }
    const e = entry;
    const turn = e.queue.then(async () => {
      clearTimeout(e.idle);
      try {
        const { stream } = await e.session;
        await stream.send(message);
        const reply = await stream.receive();
        if (reply === null) throw new Error("the peer closed the session");
        return reply;
      } catch (error) {
        this.#close(key, e);
        throw error;
      } finally {
        if (this.#open.get(key) === e) e.idle = setTimeout(() => this.#close(key, e), IDLE_MS).unref();
      }
    });
    e.queue = turn.catch(() => {});
    return turn;
  }

  #close(key: string, e: { session: Promise<{ socket: Duplex }>; idle?: NodeJS.Timeout }): void {
    clearTimeout(e.idle);
    if (this.#open.get(key) === e) this.#open.delete(key);
    void e.session.then(({ socket }) => socket.destroy(), () => {});
  }
}

/**
 * Bootstraps from the peer at host:port: pages of its holdings after this enclave's sealed cursor, on one
 * session, pipelined (the next page is asked for before this one is imported); each import seals the cursor,
 * so a restart resumes after the last page imported. At most `maxPages` pages per call, so that one gate call
 * stays within its timeout however many shares the slot holds: `done` says whether the peer's holdings ended,
 * else the caller calls again and the next call resumes from the sealed cursor. Returns what each page brought.
 */
export async function bootstrapFromPeer(net: EnclaveNet, verify: EvidenceVerifier, service: VaultService, p: PeerAddress & { pageSize: number; maxPages?: number }) {
  const { stream, socket } = await openSession(net, verify, p);
  const ask = (after: bigint | null) => stream.send(new TextEncoder().encode(JSON.stringify({ page: { after: after === null ? null : String(after), limit: p.pageSize } })));
  const pages: { shares: number; refused: number; cursor: bigint }[] = [];
  const maxPages = p.maxPages ?? Number.POSITIVE_INFINITY;
  let done = false;
  try {
    await ask(service.status().bootstrapCursor);
    for (;;) {
      const { items, last } = parseAnswer(await stream.receive());
      if (last === null) {
        done = true;
        break;
      }
      // The last page of this call asks for no next one: nothing is left unanswered on the session.
      if (pages.length + 1 < maxPages) await ask(last);
      const r = await service.importShares({ items, cursor: last });
      pages.push({ shares: r.imported.length, refused: r.refused.length, cursor: last });
      if (pages.length >= maxPages) break;
    }
    await stream.end();
  } finally {
    socket.destroy();
  }
  return { pages, done };
}
