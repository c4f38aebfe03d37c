/**
 * The host's byte relay for its enclave's network connections (the enclave
 * side is src/enclave/net/). The enclave asks for a stream to host:port; the
 * relay opens a TCP connection and pipes raw bytes both ways. Those bytes are
 * TLS records made and read inside the enclave: the relay can drop, delay or
 * refuse a stream and sees destinations, sizes and timing, but never holds a
 * session key, so it can neither read nor alter what is inside.
 *
 * `onCarried` sees every byte the host carries (tests record them to prove a
 * canary never crosses in the clear); `allow` is the operator's own egress
 * policy (a refusal is just a stream the enclave cannot open).
 */
import { connect, type Socket } from "node:net";
import { MAX_RELAY_CHUNK, type EnclaveRelayFrame, type HostRelayFrame, type RelayEndpoint, type RelaySession } from "../enclave/net/frames.ts";

export interface CarriedBytes {
  direction: "to-destination" | "to-enclave";
  stream: number;
  /** host:port as the enclave asked for it. */
  destination: string;
  bytes: Uint8Array;
}

export interface NetRelayOptions {
  /** The operator's egress policy; every destination is allowed when absent. */
  allow?: (host: string, port: number) => boolean;
  /** Sees every byte carried, in order per stream and direction. */
  onCarried?: (carried: CarriedBytes) => void;
  /** Streams one enclave may hold open at once; 64 by default. */
  maxStreams?: number;
  /** TCP connect budget; 10 s by default. */
  connectTimeoutMs?: number;
}

export function createNetRelay(options: NetRelayOptions = {}): RelayEndpoint {
  const maxStreams = options.maxStreams ?? 64;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  return {
    attach(send: (frame: HostRelayFrame) => void): RelaySession {
      const streams = new Map<number, { socket: Socket; destination: string }>();
      const refuse = (stream: number, error: string) => send({ net: "closed", stream, error });

      function open(stream: number, host: string, port: number): void {
        const destination = `${host}:${port}`;
        if (streams.has(stream)) return refuse(stream, "stream id already in use");
        if (streams.size >= maxStreams) return refuse(stream, `too many open streams (limit ${maxStreams})`);
        if (options.allow && !options.allow(host, port)) return refuse(stream, `the host does not relay to ${destination}`);
        const socket = connect({ host, port, timeout: connectTimeoutMs });
        let failure: string | undefined;
        streams.set(stream, { socket, destination });
        socket.once("connect", () => {
          socket.setTimeout(0);
          send({ net: "opened", stream });
        });
        socket.once("timeout", () => socket.destroy(new Error(`connect timed out after ${connectTimeoutMs} ms`)));
        socket.on("data", (chunk: Buffer) => {
          for (let at = 0; at < chunk.length; at += MAX_RELAY_CHUNK) {
            const bytes = new Uint8Array(chunk.subarray(at, at + MAX_RELAY_CHUNK));
            options.onCarried?.({ direction: "to-enclave", stream, destination, bytes });
            send({ net: "data", stream, bytes });
          }
        });
        socket.on("end", () => send({ net: "end", stream }));
        socket.on("error", (e: NodeJS.ErrnoException) => {
          failure = (e.code ?? e.message).slice(0, 200);
        });
        socket.on("close", () => {
          if (streams.get(stream)?.socket !== socket) return;
          streams.delete(stream);
          send(failure ? { net: "closed", stream, error: failure } : { net: "closed", stream });
        });
      }

      return {
        receive(frame: EnclaveRelayFrame): void {
          if (frame.net === "open") return open(frame.stream, frame.host, frame.port);
          const entry = streams.get(frame.stream);
          if (!entry) return;
          if (frame.net === "data") {
            options.onCarried?.({ direction: "to-destination", stream: frame.stream, destination: entry.destination, bytes: frame.bytes });
            entry.socket.write(frame.bytes);
          } else if (frame.net === "end") {
            entry.socket.end();
          } else {
            // The enclave aborted: nothing more is reported for this stream.
            streams.delete(frame.stream);
            entry.socket.destroy();
          }
        },
        close(): void {
          for (const { socket } of streams.values()) socket.destroy();
          streams.clear();
        },
      };
    },
  };
}
