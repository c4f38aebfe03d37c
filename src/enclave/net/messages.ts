/**
 * Length-prefixed messages over a byte stream (an attested TLS socket): each
 * message is a 4-byte big-endian length and that many bytes. Both ends agree
 * on `maxMessageBytes`; a larger length is refused before any of its body is
 * buffered. Sending waits for the socket to drain (backpressure), so tens of
 * MB stream without piling up; receiving reads only as much as it is asked.
 */
import type { Duplex } from "node:stream";
import { NetError } from "./errors.ts";

export interface MessageStream {
  /** Sends one message; resolves once the socket accepted it without exceeding its buffer. */
  send(bytes: Uint8Array): Promise<void>;
  /** The next message, or null when the peer ended the stream cleanly between messages. */
  receive(): Promise<Uint8Array | null>;
  /** Ends this side's direction; resolves once everything written has been flushed. */
  end(): Promise<void>;
}

export interface MessageStreamOptions {
  /** Largest message either side may send; at most 2^32 - 1. */
  maxMessageBytes: number;
}

/** Slice size for big messages, so a send honours backpressure while it writes. */
const WRITE_SLICE = 1024 * 1024;

export function createMessageStream(socket: Duplex, options: MessageStreamOptions): MessageStream {
  const max = options.maxMessageBytes;
  if (!Number.isInteger(max) || max < 0 || max > 0xffffffff) throw new NetError("NET_BAD_MESSAGE", `maxMessageBytes must be an integer 0..${0xffffffff}, got ${max}`);
  // destroyOnReturn false: reaching the peer's end must not destroy the socket (this side may still be writing).
  const reader = socket.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>;
  let buffered: Buffer[] = [];
  let bufferedBytes = 0;
  let ended = false;
  let receiving: Promise<unknown> = Promise.resolve();
  let sending: Promise<unknown> = Promise.resolve();
  // The socket's error is this codec's to report (through send/receive), never an unhandled 'error' event.
  let failure: Error | undefined;
  socket.on("error", (e: Error) => (failure ??= e));
  const broken = () => new NetError("NET_STREAM_CLOSED", `the stream failed: ${failure?.message ?? "closed"}`, { cause: failure });

  /** Reads until `n` bytes are buffered; false if the stream ended first. */
  async function fill(n: number): Promise<boolean> {
    while (bufferedBytes < n) {
      if (ended) return false;
      let next: IteratorResult<Buffer>;
      try {
        next = await reader.next();
      } catch {
        throw broken();
      }
      if (next.done) {
        ended = true;
        return false;
      }
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
      buffered.push(chunk);
      bufferedBytes += chunk.length;
    }
    return true;
  }

  function take(n: number): Buffer {
    const all = buffered.length === 1 ? buffered[0]! : Buffer.concat(buffered, bufferedBytes);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    buffered = rest.length ? [rest] : [];
    bufferedBytes = rest.length;
    return out;
  }

  async function receiveOne(): Promise<Uint8Array | null> {
    if (!(await fill(4))) {
      if (bufferedBytes === 0) return null;
      throw new NetError("NET_BAD_MESSAGE", `the stream ended inside a message's length prefix (${bufferedBytes} of 4 bytes)`);
    }
    const length = take(4).readUInt32BE(0);
    if (length > max) {
      socket.destroy();
      throw new NetError("NET_BAD_MESSAGE", `the peer sent a ${length}-byte message; the limit is ${max} bytes`, { details: { length, max } });
    }
    if (!(await fill(length))) throw new NetError("NET_BAD_MESSAGE", `the stream ended inside a ${length}-byte message (${bufferedBytes} bytes arrived)`);
    return new Uint8Array(take(length));
  }

  function waitDrain(): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        socket.removeListener("drain", onDrain);
        socket.removeListener("close", onClose);
        socket.removeListener("error", onError);
        if (error) reject(error);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(new NetError("NET_STREAM_CLOSED", "the stream closed while a message was being sent"));
      const onError = (e: Error) => done(e);
      socket.once("drain", onDrain);
      socket.once("close", onClose);
      socket.once("error", onError);
    });
  }

  async function sendOne(bytes: Uint8Array): Promise<void> {
    if (bytes.length > max) throw new NetError("NET_BAD_MESSAGE", `a ${bytes.length}-byte message is over the limit of ${max} bytes; split it`, { details: { length: bytes.length, max } });
    if (failure) throw broken();
    if (socket.destroyed || socket.writableEnded) throw new NetError("NET_STREAM_CLOSED", "the stream is closed; no message can be sent");
    const header = Buffer.alloc(4);
    header.writeUInt32BE(bytes.length, 0);
    let ok = socket.write(header);
    for (let at = 0; at < bytes.length; at += WRITE_SLICE) {
      if (!ok) await waitDrain();
      ok = socket.write(bytes.subarray(at, at + WRITE_SLICE));
    }
    if (!ok) await waitDrain();
  }

  return {
    // Calls are serialised so concurrent sends never interleave and receives stay in order.
    send(bytes) {
      const run = sending.then(() => sendOne(bytes));
      sending = run.catch(() => {});
      return run;
    },
    receive() {
      const run = receiving.then(receiveOne);
      receiving = run.catch(() => {});
      return run;
    },
    end() {
      return sending.then(
        () =>
          new Promise<void>((resolve, reject) => {
            if (socket.writableFinished) return resolve();
            socket.once("error", reject);
            socket.end(() => {
              socket.removeListener("error", reject);
              resolve();
            });
          }),
      );
    },
  };
}
