/**
 * MySQL's TLS upgrade below the driver, packet by packet: the greeting the
 * driver sees, the SSLRequest, and the sequence-id shift of the connection
 * phase (native auth, auth switch, caching_sha2 fast and full paths, ERR),
 * with packets split and merged across chunks.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { NetError } from "../../../src/enclave/net/errors.ts";
import { driverGreeting, MysqlConnectionPhase, readGreeting, sslRequestFor } from "../../../src/enclave/net/mysql-starttls.ts";

const CLIENT_SSL = 0x800;

function packet(seq: number, payload: number[] | Buffer): Buffer {
  const body = Buffer.from(payload);
  const header = Buffer.alloc(4);
  header.writeUIntLE(body.length, 0, 3);
  header[3] = seq;
  return Buffer.concat([header, body]);
}

/** A HandshakeV10 as MariaDB sends it, with the given lower capability flags. */
function greeting(capabilities: number): Buffer {
  const payload = Buffer.concat([
    Buffer.from([10]),
    Buffer.from("10.11.19-MariaDB\0"),
    Buffer.from([1, 0, 0, 0]), // connection id
    Buffer.from("12345678"), // auth data part 1
    Buffer.from([0]),
    Buffer.from([capabilities & 0xff, capabilities >> 8]),
    Buffer.from([45, 2, 0, 0xff, 0x81, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    Buffer.from("123456789012\0mysql_native_password\0"),
  ]);
  return packet(0, payload);
}

const capsAt = (g: Buffer) => g.readUInt16LE(4 + 1 + "10.11.19-MariaDB\0".length + 4 + 8 + 1);
const seqs = (bytes: Buffer) => {
  const out: number[] = [];
  for (let at = 0; at < bytes.length; at += 4 + bytes.readUIntLE(at, 3)) out.push(bytes[at + 3]!);
  return out;
};
const refused = (e: unknown) => e instanceof NetError && e.code === "NET_STARTTLS_REFUSED";

test("the driver's greeting is the server's with CLIENT_SSL cleared and nothing else changed", () => {
  const server = greeting(0xfffe);
  const driver = driverGreeting(server, "db:3306");
  assert.equal(capsAt(server) & CLIENT_SSL, CLIENT_SSL);
  assert.equal(capsAt(driver), 0xfffe & ~CLIENT_SSL);
  const diff = [...server].flatMap((b, i) => (b === driver[i] ? [] : [i]));
  assert.equal(diff.length, 1, "one byte differs");
  assert.equal(capsAt(server), 0xfffe, "the server's packet is left as it was");
});

test("a server without CLIENT_SSL, an ERR instead of a greeting, or a truncated greeting is refused", () => {
  assert.throws(() => driverGreeting(greeting(0xfffe & ~CLIENT_SSL), "db:3306"), (e: unknown) => refused(e) && /does not offer TLS/.test((e as Error).message));
  assert.throws(() => driverGreeting(packet(0, [0xff, 0x13, 0x04, ...Buffer.from("Too many connections")]), "db:3306"), (e: unknown) => refused(e) && /error 1043/.test((e as Error).message));
  assert.throws(() => driverGreeting(packet(0, [10, ...Buffer.from("10.11")]), "db:3306"), refused);
  assert.throws(() => driverGreeting(packet(0, [9, 0]), "db:3306"), refused);
});

test("SSLRequest is the driver's handshake response cut to 32 bytes, with CLIENT_SSL, as sequence id 1", () => {
  const fixed = Buffer.alloc(32);
  fixed.writeUInt32LE(0x000fa20f, 0); // CONNECT_WITH_DB, PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH, ... without SSL
  fixed.writeUInt32LE(0, 4);
  fixed[8] = 224;
  const response = packet(1, Buffer.concat([fixed, Buffer.from("cloister_job\0"), Buffer.from([20, ...Buffer.alloc(20, 9)]), Buffer.from("cloister_shop\0mysql_native_password\0")]));
  const request = sslRequestFor(response, "db:3306");
  assert.equal(request.length, 36);
  assert.equal(request.readUIntLE(0, 3), 32);
  assert.equal(request[3], 1);
  assert.equal(request.readUInt32LE(4), 0x000fa20f | CLIENT_SSL, "the driver's capabilities, with TLS: the server keeps these (CONNECT_WITH_DB)");
  assert.deepEqual(request.subarray(8), fixed.subarray(4), "max packet size, character set and filler as the driver sent them");
  assert.equal(request.includes("cloister_job"), false, "no user name before TLS");
  assert.throws(() => sslRequestFor(response.subarray(0, 20), "db:3306"), refused);
  assert.throws(() => sslRequestFor(packet(1, [1, 2, 3]), "db:3306"), refused);
});

test("readGreeting waits for the whole packet across chunks and refuses bytes after it", async () => {
  const whole = greeting(0xfffe);
  const raw = new EventEmitter();
  const read = readGreeting(raw, "db:3306");
  raw.emit("data", whole.subarray(0, 2));
  raw.emit("data", whole.subarray(2, 30));
  raw.emit("data", whole.subarray(30));
  assert.deepEqual(await read, whole);
  assert.equal(raw.listenerCount("data"), 0, "the raw stream is left for TLS");

  const injected = new EventEmitter();
  const bad = readGreeting(injected, "db:3306");
  injected.emit("data", Buffer.concat([whole, packet(1, [0x00, 0, 0, 2, 0, 0, 0])]));
  await assert.rejects(bad, (e: unknown) => refused(e) && /after its greeting/.test((e as Error).message));

  const closed = new EventEmitter();
  const gone = readGreeting(closed, "db:3306");
  closed.emit("data", whole.subarray(0, 10));
  closed.emit("close");
  await assert.rejects(gone, refused);
});

test("native auth: the response goes up one (with CLIENT_SSL), the OK comes down one, then commands pass untouched", () => {
  const phase = new MysqlConnectionPhase();
  const response = packet(1, [0x0d, 0xa2, 0x0a, 0x00, ...Buffer.from("rest of the handshake response")]);
  const up = phase.fromClient(response);
  assert.deepEqual(seqs(up), [2]);
  assert.equal(up.readUInt16LE(4) & CLIENT_SSL, CLIENT_SSL);
  assert.deepEqual(up.subarray(6), response.subarray(6));
  const ok = packet(3, [0x00, 0, 0, 2, 0, 0, 0]);
  assert.deepEqual(seqs(phase.fromServer(ok)), [2]);
  assert.equal(phase.done, true);
  const query = packet(0, [0x03, ...Buffer.from("SELECT 1")]);
  assert.deepEqual(phase.fromClient(query), query);
  const result = Buffer.concat([packet(1, [1]), packet(2, [0x03, 0x64, 0x65, 0x66])]);
  assert.deepEqual(phase.fromServer(result), result);
});

test("auth switch and caching_sha2 round trips are shifted until the final OK, even split and merged across chunks", () => {
  const phase = new MysqlConnectionPhase();
  assert.deepEqual(seqs(phase.fromClient(packet(1, [0x0d, 0xa2, 0, 0]))), [2]);
  // Server: auth switch to caching_sha2_password (seq 3), split in three chunks.
  const authSwitch = packet(3, [0xfe, ...Buffer.from("caching_sha2_password\0"), ...Buffer.alloc(20, 7)]);
  assert.equal(phase.fromServer(authSwitch.subarray(0, 3)).length, 0, "an incomplete header is held");
  assert.equal(phase.fromServer(authSwitch.subarray(3, 10)).length, 0, "an incomplete packet is held");
  assert.deepEqual(seqs(phase.fromServer(authSwitch.subarray(10))), [2]);
  assert.deepEqual(seqs(phase.fromClient(packet(3, Buffer.alloc(32, 1)))), [4]);
  // Full authentication: "perform full auth" (0x01 0x04), the password, then OK with the first command's reply in the same chunk.
  assert.deepEqual(seqs(phase.fromServer(packet(5, [0x01, 0x04]))), [4]);
  assert.equal(phase.done, false, "more auth data does not end the phase");
  assert.deepEqual(seqs(phase.fromClient(packet(5, [...Buffer.from("secret"), 0]))), [6]);
  const tail = packet(1, [0x01]);
  const down = phase.fromServer(Buffer.concat([packet(7, [0x00, 0, 0, 2, 0, 0, 0]), tail]));
  assert.deepEqual(seqs(down), [6, 1], "the OK is shifted, what follows it is not");
  assert.equal(phase.done, true);
});

test("caching_sha2 fast path: fast-auth-success then OK", () => {
  const phase = new MysqlConnectionPhase();
  phase.fromClient(packet(1, [0x0d, 0xa2, 0, 0]));
  assert.deepEqual(seqs(phase.fromServer(Buffer.concat([packet(3, [0x01, 0x03]), packet(4, [0x00, 0, 0, 2, 0, 0, 0])]))), [2, 3]);
  assert.equal(phase.done, true);
});

test("an ERR ends the phase: refused credentials reach the driver in sequence", () => {
  const phase = new MysqlConnectionPhase();
  phase.fromClient(packet(1, [0x0d, 0xa2, 0, 0]));
  const err = packet(3, [0xff, 0x15, 0x04, ...Buffer.from("#28000Access denied")]);
  const down = phase.fromServer(err);
  assert.deepEqual(seqs(down), [2]);
  assert.deepEqual(down.subarray(4), err.subarray(4));
  assert.equal(phase.done, true);
});
