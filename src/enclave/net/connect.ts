/**
 * The enclave's network API: TLS connections that terminate inside the
 * enclave, carried by the host's byte relay (channel.ts). The host sees only
 * TLS records; the enclave checks the server against a pin it chose itself:
 *
 *  - `certificate`: the SHA-256 of the server certificate's DER (a database
 *    or service whose self-signed certificate the job's configuration names);
 *  - `attested`: an attested TLS peer (src/attestation/atls): its certificate
 *    must carry evidence for its key that the given verifier and policy accept,
 *    and this enclave presents its own attested certificate (mutual TLS).
 *
 * The TLS layer accepts any chain (pins replace CAs); nothing is handed to the
 * caller before the pin is checked. TLS 1.3 only.
 *
 * Destinations come from the enclave's own configuration or the job's
 * parameters, never from the host: the host only learns host:port when asked
 * to open a stream, and cannot redirect it to anything that passes the pin.
 */
import { createHash, X509Certificate } from "node:crypto";
import type { Duplex } from "node:stream";
import * as tls from "node:tls";
import { isIP } from "node:net";
import { verifyAttestedCertificate, type AttestedCertificate, type AttestedPeer, type EvidenceVerifier, type FreshnessExpectation } from "../../attestation/atls/certificate.ts";
import type { RelayChannel, RelaySocket } from "./channel.ts";
import { SocketLikeDuplex } from "./socket-like.ts";
import { NetError } from "./errors.ts";
import { driverGreeting, MysqlConnectionPhase, readGreeting, sslRequestFor } from "./mysql-starttls.ts";
import { listenAttested, type EnclaveListener, type ListenOptions } from "./listen.ts";

export type Pin =
  /** Lowercase or uppercase hex SHA-256 of the server certificate's DER (see certificateSha256). */
  | { kind: "certificate"; sha256: string }
  /** An attested peer: its evidence must pass `verify` (which carries the policy), with the expected freshness if given. */
  | { kind: "attested"; verify: EvidenceVerifier; freshness?: FreshnessExpectation };

export interface Destination {
  host: string;
  port: number;
  pin: Pin;
  /** SNI; defaults to `host` when it is a name (never an IP, RFC 6066). */
  servername?: string;
  /** A protocol-level TLS upgrade to run on the raw stream first (PostgreSQL's SSLRequest; MySQL's needs the driver's handshake response, so EnclaveNet.mysql runs it). */
  startTls?: "postgres";
}

export interface PinnedConnection {
  /** Plaintext in, TLS records out to the relay. */
  socket: tls.TLSSocket;
  /** SHA-256 (hex) of the server certificate's DER. */
  certificateSha256: string;
  /** The verified claims, for an attested destination. */
  peer?: AttestedPeer;
}

/** A protocol step on the opened raw stream before the TLS handshake (a database's TLS upgrade). */
type Upgrade = (raw: RelaySocket, where: string) => Promise<void>;

/** This enclave's attested certificate and key, as createAttestedCertificate returns them. */
export type EnclaveTlsIdentity = Pick<AttestedCertificate, "certPem" | "keyPem">;

export interface EnclaveNetOptions {
  channel: RelayChannel;
  /**
   * The certificate this enclave presents to attested peers. The one place the
   * enclave's TLS identity enters the network API; without it attested
   * destinations are refused with NET_NO_CERTIFICATE.
   */
  certificate?: () => Promise<EnclaveTlsIdentity>;
  /** Open + TLS handshake + pin check budget; 30 s by default. */
  handshakeTimeoutMs?: number;
}

export interface EnclaveNet {
  /** Opens a stream through the relay, runs TLS inside the enclave and checks the pin. */
  connect(destination: Destination): Promise<PinnedConnection>;
  /**
   * An unconnected socket for libraries that take a stream and call
   * `connect(port, host)` on it (pg's `stream`): the library reads and writes
   * plaintext; TLS and the pin are done here, below it. The library's
   * port/host must be the destination's.
   */
  socketFor(destination: Destination): Duplex;
  /**
   * Connection options for `new pg.Client({ ...net.postgres(dest), user, password, database })`:
   * pg's own TLS is off because this socket already is TLS (SSLRequest, then a
   * pinned TLS 1.3 handshake), so pg can never fall back to plaintext.
   */
  postgres(destination: Omit<Destination, "startTls">): { host: string; port: number; ssl: false; stream: () => Duplex };
  /**
   * Connection options for `mysql.createConnection({ ...net.mysql(dest), user, password, database })`:
   * a stream already on its way to a pinned TLS session (the server's greeting,
   * SSLRequest and the handshake are done here, mysql-starttls.ts); mysql2's
   * own TLS stays off and nothing it writes leaves before the pin is checked.
   */
  mysql(destination: Omit<Destination, "startTls">): { stream: () => Duplex };
  /**
   * Asks the host to listen for inbound connections and runs the mutual
   * attested TLS server on each (listen.ts); NET_LISTEN_FAILED if the host
   * offers no inbound connections, NET_NO_CERTIFICATE without this enclave's
   * attested certificate.
   */
  listen(options: ListenOptions): Promise<EnclaveListener>;
}

/** The pin of a certificate: hex SHA-256 of its DER, from PEM or DER. */
export function certificateSha256(certificate: string | Uint8Array): string {
  return createHash("sha256").update(new X509Certificate(certificate).raw).digest("hex");
}

/** PostgreSQL's SSLRequest: length 8, code 80877103. */
const PG_SSL_REQUEST = Uint8Array.of(0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f);

/** Sends SSLRequest and reads the one-byte answer; anything after the 'S' would be unauthenticated bytes (CVE-2021-23214), so it is refused. */
function postgresStartTls(raw: RelaySocket, destination: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    const onClose = () => reject(new NetError("NET_STARTTLS_REFUSED", `${destination} closed the connection instead of answering SSLRequest`));
    raw.once("error", onError);
    raw.once("close", onClose);
    raw.once("data", (chunk: Buffer) => {
      raw.removeListener("error", onError);
      raw.removeListener("close", onClose);
      if (chunk.length === 1 && chunk[0] === 0x53) return resolve();
      raw.destroy();
      const answer = chunk.length === 1 && chunk[0] === 0x4e ? "declined TLS ('N')" : `answered SSLRequest with ${chunk.length} unexpected byte(s)`;
      reject(new NetError("NET_STARTTLS_REFUSED", `${destination} ${answer}; the enclave only talks to PostgreSQL over TLS`, { details: { destination } }));
    });
    raw.write(PG_SSL_REQUEST);
  });
}

function handshake(raw: RelaySocket, destination: Destination, identity: EnclaveTlsIdentity | undefined): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const servername = destination.servername ?? (isIP(destination.host) === 0 ? destination.host : undefined);
    const socket = tls.connect({
      socket: raw,
      minVersion: "TLSv1.3",
      // Pins replace CA validation: checked below before anyone sees the socket.
      rejectUnauthorized: false,
      ...(servername ? { servername } : {}),
      ...(identity ? { cert: identity.certPem, key: identity.keyPem } : {}),
    });
    const fail = (e: Error) => {
      socket.destroy();
      reject(e instanceof NetError ? e : new NetError("NET_TLS_FAILED", `TLS handshake with ${raw.destination} failed: ${e.message}`, { cause: e, details: { destination: raw.destination } }));
    };
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      socket.removeListener("error", fail);
      // A reset the host sends later ends the stream; unheard, it would end the enclave process instead.
      socket.on("error", () => {});
      resolve(socket);
    });
  });
}

async function checkPin(socket: tls.TLSSocket, destination: Destination, where: string): Promise<{ certificateSha256: string; peer?: AttestedPeer }> {
  const cert = socket.getPeerX509Certificate();
  if (!cert) throw new NetError("NET_PIN_MISMATCH", `${where} presented no certificate`, { details: { destination: where } });
  const der = new Uint8Array(cert.raw);
  const sha256 = createHash("sha256").update(der).digest("hex");
  const pin = destination.pin;
  if (pin.kind === "certificate") {
    if (sha256 !== pin.sha256.toLowerCase()) {
      throw new NetError("NET_PIN_MISMATCH", `${where} presented a certificate other than the pinned one; check the destination's pin`, {
        details: { destination: where, expected: pin.sha256.toLowerCase(), presented: sha256 },
      });
    }
    return { certificateSha256: sha256 };
  }
  try {
    const peer = await verifyAttestedCertificate(der, { verify: pin.verify, ...(pin.freshness !== undefined ? { freshness: pin.freshness } : {}) });
    return { certificateSha256: sha256, peer };
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    throw new NetError("NET_PEER_REFUSED", `${where} is not an attested peer this enclave accepts: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
      details: { destination: where, ...(typeof code === "string" ? { reason: code } : {}) },
    });
  }
}

function opened(raw: RelaySocket): Promise<void> {
  return new Promise((resolve, reject) => {
    raw.once("error", reject);
    raw.once("connect", () => {
      raw.removeListener("error", reject);
      resolve();
    });
  });
}

function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => void, where: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new NetError("NET_TLS_FAILED", `no pinned TLS session with ${where} within ${ms} ms`, { details: { destination: where } }));
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export function createEnclaveNet(options: EnclaveNetOptions): EnclaveNet {
  const timeoutMs = options.handshakeTimeoutMs ?? 30_000;

  async function connect(destination: Destination, upgrade?: Upgrade): Promise<PinnedConnection> {
    const identity = destination.pin.kind === "attested" ? await attestedIdentity(options, destination) : undefined;
    const raw = options.channel.socket().connect(destination.port, destination.host);
    const where = raw.destination;
    let socket: tls.TLSSocket | undefined;
    // The budget covers the host's answer to `open` too: a relay that never answers cannot hold the job.
    const work = (async () => {
      await opened(raw);
      if (destination.startTls === "postgres") await postgresStartTls(raw, where);
      if (upgrade) await upgrade(raw, where);
      socket = await handshake(raw, destination, identity);
      return { socket, ...(await checkPin(socket, destination, where)) };
    })();
    try {
      return await withTimeout(work, timeoutMs, () => raw.destroy(), where);
    } catch (e) {
      socket?.destroy();
      raw.destroy();
      throw e;
    }
  }

  return {
    connect,
    socketFor: (destination) => new DeferredTlsSocket(destination, connect),
    postgres: (destination) => ({
      host: destination.host,
      port: destination.port,
      ssl: false,
      stream: () => new DeferredTlsSocket({ ...destination, startTls: "postgres" }, connect),
    }),
    // mysql2 reads and writes the stream it is given without connecting it.
    mysql: (destination) => ({ stream: () => new DeferredTlsSocket(destination, connect, "mysql").connect(destination.port, destination.host) }),
    listen: (listenOptions) => {
      const certificate = options.certificate;
      if (!certificate) return Promise.reject(new NetError("NET_NO_CERTIFICATE", "this enclave has no attested TLS certificate configured, so it cannot accept attested connections"));
      return listenAttested({ channel: options.channel, identity: certificate, handshakeTimeoutMs: timeoutMs }, listenOptions);
    },
  };
}

async function attestedIdentity(options: EnclaveNetOptions, destination: Destination): Promise<EnclaveTlsIdentity> {
  if (!options.certificate) {
    throw new NetError("NET_NO_CERTIFICATE", `${destination.host}:${destination.port} is an attested destination but this enclave has no attested TLS certificate configured`);
  }
  return options.certificate();
}

/**
 * See EnclaveNet.socketFor and EnclaveNet.mysql. Writes wait until the pinned
 * session is up; for mysql the driver first gets the server's greeting and its
 * handshake response is held for SSLRequest (mysql-starttls.ts).
 */
class DeferredTlsSocket extends SocketLikeDuplex {
  readonly #destination: Destination;
  readonly #connect: (destination: Destination, upgrade?: Upgrade) => Promise<PinnedConnection>;
  readonly #mysql: MysqlConnectionPhase | undefined;
  #tls: tls.TLSSocket | undefined;
  #held: (() => void) | undefined;
  /** Takes the driver's first write (mysql's handshake response) while the upgrade waits for it. */
  #onFirstWrite: ((chunk: Buffer) => void) | undefined;
  #started = false;

  constructor(destination: Destination, connect: (destination: Destination, upgrade?: Upgrade) => Promise<PinnedConnection>, protocol?: "mysql") {
    super({ allowHalfOpen: false });
    this.#destination = destination;
    this.#connect = connect;
    this.#mysql = protocol === "mysql" ? new MysqlConnectionPhase() : undefined;
  }

  /** MySQL's upgrade: greeting to the driver, SSLRequest from its handshake response. */
  readonly #mysqlUpgrade: Upgrade = async (raw, where) => {
    const greeting = driverGreeting(await readGreeting(raw, where), where);
    // Armed before the push: the driver may answer from inside it.
    const response = new Promise<Buffer>((resolve) => (this.#onFirstWrite = resolve));
    this.push(greeting);
    raw.write(sslRequestFor(await response, where));
  };

  connect(port: number, host: string): this {
    const d = this.#destination;
    if (this.#started) throw new NetError("NET_BAD_DESTINATION", "this socket was already connected; ask for a new one");
    this.#started = true;
    if (port !== d.port || host !== d.host) {
      process.nextTick(() => this.destroy(new NetError("NET_BAD_DESTINATION", `asked to connect to ${host}:${port}, but this socket is pinned to ${d.host}:${d.port}`)));
      return this;
    }
    this.#connect(d, this.#mysql ? this.#mysqlUpgrade : undefined).then(({ socket }) => {
      if (this.destroyed) return void socket.destroy();
      this.#tls = socket;
      socket.on("data", (chunk: Buffer) => {
        const bytes = this.#mysql ? this.#mysql.fromServer(chunk) : chunk;
        if (bytes.length > 0 && !this.push(bytes)) socket.pause();
      });
      socket.on("end", () => this.push(null));
      socket.on("error", (e: Error) => this.destroy(e));
      socket.on("close", () => {
        if (!this.destroyed) this.destroy();
      });
      this.emit("connect");
      this.#held?.();
      this.#held = undefined;
    }, (e: Error) => this.destroy(e));
    return this;
  }

  override _read(): void {
    this.#tls?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const write = () => {
      if (!this.#tls) return callback(new NetError("NET_STREAM_CLOSED", "the pinned connection is closed"));
      this.#tls.write(this.#mysql ? this.#mysql.fromClient(chunk) : chunk, callback);
    };
    if (this.#tls) return write();
    this.#held = write;
    this.#onFirstWrite?.(chunk);
    this.#onFirstWrite = undefined;
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#tls) return callback();
    this.#tls.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#tls?.destroy();
    this.#held = undefined;
    callback(error);
  }
}
