/**
 * Mutual TLS 1.3 between attested peers over node:tls. The TLS layer accepts
 * any certificate (they are self-signed); each side then verifies the peer's
 * attested certificate with its own verifier and policy, and destroys the
 * socket with the reason when the peer is refused. Application data should
 * only flow once `onPeer` (server) or `connectAttested` (client) has handed
 * out the socket.
 *
 * Freshness: each side's certificate binds a 32-byte freshness value chosen
 * by the deployment (a nonce agreed out of band, or a recent block hash);
 * `peerFreshness` says what this side accepts from the other. TLS 1.3 already
 * proves possession of the certified key in every handshake; freshness limits
 * how long a leaked key plus certificate can be replayed.
 */
import * as tls from "node:tls";
import type { AttestedCertificate, AttestedPeer, EvidenceVerifier, FreshnessExpectation } from "./certificate.ts";
import { verifyAttestedCertificate } from "./certificate.ts";
import { AttestedTlsError } from "./errors.ts";

export interface AttestedEndpointOptions {
  /** This side's attested certificate and key (from createAttestedCertificate). */
  certificate: Pick<AttestedCertificate, "certPem" | "keyPem">;
  /** Judges the peer's evidence against this side's policy. */
  verify: EvidenceVerifier;
  /** The freshness this side expects in the peer's evidence. */
  peerFreshness?: FreshnessExpectation;
}

const TLS_BASE = { minVersion: "TLSv1.3", rejectUnauthorized: false } as const;

function peerCertificateDer(socket: tls.TLSSocket): Uint8Array {
  const cert = socket.getPeerX509Certificate();
  if (!cert) throw new AttestedTlsError("ATLS_CERT_INVALID", "attested TLS peer presented no certificate; both sides must present an attested certificate");
  return new Uint8Array(cert.raw);
}

async function verifyPeer(socket: tls.TLSSocket, options: AttestedEndpointOptions): Promise<AttestedPeer> {
  return verifyAttestedCertificate(peerCertificateDer(socket), {
    verify: options.verify,
    ...(options.peerFreshness !== undefined ? { freshness: options.peerFreshness } : {}),
  });
}

export interface AttestedServerOptions extends AttestedEndpointOptions {
  /** Called with each connection whose client passed verification. */
  onPeer: (socket: tls.TLSSocket, peer: AttestedPeer) => void;
  /** Called when a client is refused (the socket is destroyed right after). */
  onRefused?: (error: Error, socket: tls.TLSSocket) => void;
}

export function createAttestedServer(options: AttestedServerOptions): tls.Server {
  const server = tls.createServer({ ...TLS_BASE, cert: options.certificate.certPem, key: options.certificate.keyPem, requestCert: true });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    socket.pause();
    verifyPeer(socket, options).then(
      (peer) => {
        socket.resume();
        options.onPeer(socket, peer);
      },
      (error: Error) => {
        options.onRefused?.(error, socket);
        socket.destroy();
      },
    );
  });
  return server;
}

export interface ConnectAttestedOptions extends AttestedEndpointOptions {
  host: string;
  port: number;
  servername?: string;
}

/** Connects, verifies the server's attested certificate and resolves with the socket and the server's verified claims. */
export function connectAttested(options: ConnectAttestedOptions): Promise<{ socket: tls.TLSSocket; peer: AttestedPeer }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      ...TLS_BASE,
      host: options.host,
      port: options.port,
      ...(options.servername ? { servername: options.servername } : {}),
      cert: options.certificate.certPem,
      key: options.certificate.keyPem,
    });
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(error);
    };
    socket.once("error", fail);
    socket.once("close", () => fail(new Error("attested TLS connection closed before the server was verified")));
    socket.once("secureConnect", () => {
      verifyPeer(socket, options).then((peer) => {
        if (settled) return;
        settled = true;
        socket.removeListener("error", fail);
        resolve({ socket, peer });
      }, fail);
    });
  });
}
