/**
 * Inbound attested connections: the enclave asks the host's relay to listen
 * (channel.ts `listen`), and runs the TLS 1.3 SERVER itself on every stream
 * the host accepts. The server presents this enclave's attested certificate
 * and requires the client's (mutual TLS); the client's certificate is checked
 * with the listener's `verify` (its policy) before the connection reaches the
 * handler. A refused peer is dropped: the handler never sees it, and only the
 * error code is reported to `onRefused`.
 *
 * The address comes from the host and is only passed on to peers; who a peer
 * is rests on attestation alone. The client side is EnclaveNet.connect with an
 * `attested` pin (connect.ts); both interoperate.
 */
import type { Duplex } from "node:stream";
import * as tls from "node:tls";
import { verifyAttestedCertificate, type AttestedPeer, type EvidenceVerifier, type FreshnessExpectation } from "../../attestation/atls/certificate.ts";
import type { RelayChannel, RelaySocket } from "./channel.ts";
import type { EnclaveTlsIdentity } from "./connect.ts";
import { NetError } from "./errors.ts";

export interface ListenOptions {
  /** Who may connect: an attested peer whose evidence passes `verify` (which carries the policy), with the expected freshness if given. */
  peer: { kind: "attested"; verify: EvidenceVerifier; freshness?: FreshnessExpectation };
  /** Told (with a NetError carrying no peer data) when a connection was dropped before the handler saw it. */
  onRefused?: (error: NetError) => void;
}

export interface AcceptedConnection {
  /** The TLS socket: plaintext in and out. */
  socket: Duplex;
  /** The client's verified claims. */
  peer: AttestedPeer;
}

export interface EnclaveListener {
  /** What to publish or give to peers (as the host reports it; untrusted, see above). */
  readonly address: { host: string; port: number };
  /** The handler for verified connections; connections verified before it is set wait for it. */
  onConnection(handler: (conn: AcceptedConnection) => void): void;
  /** Stops listening and drops connections still in their handshake; handed-out connections stay open. */
  close(): Promise<void>;
}

export interface ListenContext {
  channel: RelayChannel;
  identity: () => Promise<EnclaveTlsIdentity>;
  handshakeTimeoutMs: number;
}

/** Runs the attested TLS server on one accepted relay stream; resolves with the verified connection. */
function serve(raw: RelaySocket, context: tls.SecureContext, options: ListenOptions, timeoutMs: number): Promise<AcceptedConnection> {
  return new Promise((resolve, reject) => {
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext: context, requestCert: true, rejectUnauthorized: false });
    let settled = false;
    const fail = (error: NetError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new NetError("NET_TLS_FAILED", `no verified TLS session with an inbound peer within ${timeoutMs} ms`)), timeoutMs);
    socket.on("error", (e: Error) => fail(e instanceof NetError ? e : new NetError("NET_TLS_FAILED", `TLS handshake with an inbound peer failed: ${e.message}`)));
    socket.once("close", () => fail(new NetError("NET_STREAM_CLOSED", "an inbound peer closed the connection before it was verified")));
    socket.once("secure", () => {
      socket.pause();
      const cert = socket.getPeerX509Certificate();
      if (!cert) return fail(new NetError("NET_PEER_REFUSED", "an inbound peer presented no certificate; attested peers must present theirs"));
      const { verify, freshness } = options.peer;
      verifyAttestedCertificate(new Uint8Array(cert.raw), { verify, ...(freshness !== undefined ? { freshness } : {}) }).then(
        (peer) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          socket.removeAllListeners("error");
          socket.removeAllListeners("close");
          // A peer that resets the connection must not be able to crash the enclave through an unhandled 'error'
          // event: the handler's own listeners still see every error.
          socket.on("error", () => {});
          resolve({ socket, peer });
        },
        (cause: unknown) => {
          const code = (cause as { code?: unknown }).code;
          fail(new NetError("NET_PEER_REFUSED", `an inbound peer is not an attested peer this enclave accepts${typeof code === "string" ? ` (${code})` : ""}`, { details: typeof code === "string" ? { reason: code } : {} }));
        },
      );
    });
  });
}

export async function listenAttested(ctx: ListenContext, options: ListenOptions): Promise<EnclaveListener> {
  const identity = await ctx.identity();
  const context = tls.createSecureContext({ cert: identity.certPem, key: identity.keyPem, minVersion: "TLSv1.3" });
  const relay = await ctx.channel.listen();
  const handshaking = new Set<RelaySocket>();
  const ready: AcceptedConnection[] = [];
  let handler: ((conn: AcceptedConnection) => void) | undefined;
  let closed = false;
  relay.onStream((raw) => {
    if (closed) return void raw.destroy();
    handshaking.add(raw);
    serve(raw, context, options, ctx.handshakeTimeoutMs).then(
      (conn) => {
        handshaking.delete(raw);
        if (closed) return void conn.socket.destroy();
        if (handler) handler(conn);
        else ready.push(conn);
      },
      (error: NetError) => {
        handshaking.delete(raw);
        options.onRefused?.(error);
      },
    );
  });
  return {
    address: { ...relay.address },
    onConnection(h) {
      handler = h;
      for (const conn of ready.splice(0)) h(conn);
    },
    close() {
      closed = true;
      relay.close();
      for (const raw of handshaking) raw.destroy();
      handshaking.clear();
      for (const conn of ready.splice(0)) conn.socket.destroy();
      return Promise.resolve();
    },
  };
}
