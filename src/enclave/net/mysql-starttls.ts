/**
 * MySQL/MariaDB's TLS upgrade, done by the enclave below the driver (mysql2),
 * so the driver can never talk to the server in the clear:
 *
 *  1. the server speaks first: its greeting (HandshakeV10, sequence id 0) is
 *     read from the raw relayed stream; a server without CLIENT_SSL is refused;
 *  2. the driver is handed the greeting with CLIENT_SSL cleared (so it does not
 *     try TLS itself) and answers with its handshake response, which is held;
 *  3. the enclave sends SSLRequest (sequence id 1: the response's first 32
 *     bytes, as a TLS client does, since MariaDB keeps the capabilities it
 *     reads there) and runs the pinned TLS handshake (connect.ts);
 *  4. the held response, then everything else, goes over TLS.
 *
 * The driver never saw SSLRequest, so during the connection phase its sequence
 * ids are one behind the server's: MysqlConnectionPhase adds one to each of
 * its packets and takes one off each of the server's, until the server ends
 * authentication with OK or ERR (after any auth switch or caching_sha2
 * round trips). Commands restart at sequence id 0, so nothing is rewritten
 * after that.
 */
import { NetError } from "./errors.ts";

/** Capability flag: the server accepts SSLRequest (and the client sends one). */
const CLIENT_SSL = 0x800;
/** SSLRequest's payload: capabilities (4), max packet size (4), character set (1), 23 reserved bytes. */
const SSL_REQUEST_LENGTH = 32;
/** A greeting is ~100 bytes; anything near this is not a MySQL server. */
const MAX_GREETING = 1024;

const HEADER = 4;
const payloadLength = (packet: Buffer, at = 0) => packet.readUIntLE(at, 3);

/** Offset (in the packet, header included) of the greeting's lower capability flags. */
function capabilityOffset(greeting: Buffer): number {
  const versionEnd = greeting.indexOf(0, HEADER + 1);
  // protocol version, server version + NUL, connection id (4), auth data part 1 (8), filler (1)
  const offset = versionEnd + 1 + 4 + 8 + 1;
  if (versionEnd < 0 || offset + 2 > greeting.length) throw new Error("truncated greeting");
  return offset;
}

/**
 * SSLRequest for the driver's handshake response (HandshakeResponse41, one
 * whole packet): its first 32 payload bytes with CLIENT_SSL set, as sequence id 1.
 */
export function sslRequestFor(response: Buffer, destination: string): Buffer {
  if (response.length < HEADER + SSL_REQUEST_LENGTH || response.length !== HEADER + payloadLength(response)) {
    throw new NetError("NET_STARTTLS_REFUSED", `the MySQL driver's first packet to ${destination} is not a whole handshake response; cannot build SSLRequest`, { details: { destination } });
  }
  const packet = Buffer.alloc(HEADER + SSL_REQUEST_LENGTH);
  packet.writeUIntLE(SSL_REQUEST_LENGTH, 0, 3);
  packet[3] = 1;
  response.copy(packet, HEADER, HEADER, HEADER + SSL_REQUEST_LENGTH);
  packet.writeUInt16LE(packet.readUInt16LE(HEADER) | CLIENT_SSL, HEADER);
  return packet;
}

/**
 * Checks the server's greeting packet and returns it as the driver must see
 * it: CLIENT_SSL cleared. Throws NET_STARTTLS_REFUSED if it is not a
 * HandshakeV10 offering TLS.
 */
export function driverGreeting(greeting: Buffer, destination: string): Buffer {
  const refuse = (why: string) => new NetError("NET_STARTTLS_REFUSED", `${destination} ${why}; the enclave only talks to MySQL/MariaDB over TLS`, { details: { destination } });
  const first = greeting[HEADER];
  if (first === 0xff) throw refuse(`answered with error ${greeting.length >= HEADER + 3 ? greeting.readUInt16LE(HEADER + 1) : "?"} instead of a greeting`);
  if (first !== 10) throw refuse(`sent no MySQL protocol 10 greeting (protocol ${String(first)})`);
  let offset: number;
  try {
    offset = capabilityOffset(greeting);
  } catch {
    throw refuse("sent a truncated greeting");
  }
  const capabilities = greeting.readUInt16LE(offset);
  if ((capabilities & CLIENT_SSL) === 0) throw refuse("does not offer TLS (no CLIENT_SSL in its greeting; start it with ssl_cert and ssl_key)");
  const copy = Buffer.from(greeting);
  copy.writeUInt16LE(capabilities & ~CLIENT_SSL, offset);
  return copy;
}

/** A reader of whole packets from a byte stream; `take` returns the next complete one, if any. */
class PacketBuffer {
  #pending: Buffer = Buffer.alloc(0);

  add(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
  }

  take(): Buffer | undefined {
    if (this.#pending.length < HEADER) return undefined;
    const end = HEADER + payloadLength(this.#pending);
    if (this.#pending.length < end) return undefined;
    const packet = Buffer.from(this.#pending.subarray(0, end));
    this.#pending = this.#pending.subarray(end);
    return packet;
  }

  /** Whatever follows the last whole packet taken. */
  rest(): Buffer {
    const rest = this.#pending;
    this.#pending = Buffer.alloc(0);
    return rest;
  }
}

/**
 * Reads the greeting: resolves with the whole packet once it is in; refuses
 * bytes after it (the server must wait for the client, and anything it sent
 * before TLS would be unauthenticated).
 */
export function readGreeting(raw: NodeJS.EventEmitter, destination: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const packets = new PacketBuffer();
    let received = 0;
    const done = (error?: Error, greeting?: Buffer) => {
      raw.removeListener("data", onData);
      raw.removeListener("error", onError);
      raw.removeListener("close", onClose);
      if (error) reject(error);
      else resolve(greeting!);
    };
    const onError = (e: Error) => done(e);
    const onClose = () => done(new NetError("NET_STARTTLS_REFUSED", `${destination} closed the connection before its greeting`, { details: { destination } }));
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_GREETING) return done(new NetError("NET_STARTTLS_REFUSED", `${destination} sent over ${MAX_GREETING} bytes without a MySQL greeting`, { details: { destination } }));
      packets.add(chunk);
      const greeting = packets.take();
      if (!greeting) return;
      if (packets.rest().length > 0) return done(new NetError("NET_STARTTLS_REFUSED", `${destination} sent bytes after its greeting, before TLS; refusing them`, { details: { destination } }));
      done(undefined, greeting);
    };
    raw.on("data", onData);
    raw.once("error", onError);
    raw.once("close", onClose);
  });
}

/** See the top of this file: the sequence-id shift between the driver and the server, for the connection phase. */
export class MysqlConnectionPhase {
  readonly #fromServer = new PacketBuffer();
  readonly #fromClient = new PacketBuffer();
  #firstClientPacket = true;
  #done = false;

  /** True once the server's OK or ERR ended authentication. */
  get done(): boolean {
    return this.#done;
  }

  /** Server bytes for the driver: each packet's sequence id minus one, up to and including the OK/ERR. */
  fromServer(chunk: Buffer): Buffer {
    if (this.#done) return chunk;
    this.#fromServer.add(chunk);
    const out: Buffer[] = [];
    for (let packet = this.#fromServer.take(); packet; packet = this.#done ? undefined : this.#fromServer.take()) {
      packet[3] = (packet[3]! + 255) & 0xff;
      // OK (0x00) or ERR (0xff) ends the phase; 0x01 (more auth data) and 0xfe (auth switch) do not.
      if (packet[HEADER] === 0x00 || packet[HEADER] === 0xff) this.#done = true;
      out.push(packet);
    }
    if (this.#done) out.push(this.#fromServer.rest());
    return Buffer.concat(out);
  }

  /**
   * Driver bytes for the server: each packet's sequence id plus one. The
   * first is the handshake response; it gets CLIENT_SSL, as in the SSLRequest.
   */
  fromClient(chunk: Buffer): Buffer {
    this.#fromClient.add(chunk);
    if (this.#done) return this.#fromClient.rest();
    const out: Buffer[] = [];
    for (let packet = this.#fromClient.take(); packet; packet = this.#fromClient.take()) {
      packet[3] = (packet[3]! + 1) & 0xff;
      if (this.#firstClientPacket && packet.length >= HEADER + 2) packet.writeUInt16LE(packet.readUInt16LE(HEADER) | CLIENT_SSL, HEADER);
      this.#firstClientPacket = false;
      out.push(packet);
    }
    return Buffer.concat(out);
  }
}
