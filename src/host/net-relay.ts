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
 *
 * Destinations come from job parameters, so the relay is an egress proxy for
 * whoever submits work: by default it refuses loopback, private, link-local
 * and other non-public addresses, checked on the address actually dialled
 * (after DNS), so a name that resolves into the operator's network is refused
 * too.
 */
import { BlockList, connect, type Socket } from "node:net";
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
  /** "refuse" (default) keeps the relay off loopback, private and link-local networks; "allow" is for tests and private deployments. */
  privateDestinations?: "refuse" | "allow";
}

/** Addresses that are not the public internet: loopback, RFC 1918, CGNAT, link-local, unique-local, multicast, reserved. */
function nonPublicAddresses(): BlockList {
  const list = new BlockList();
  const v4: [string, number][] = [
    ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
    ["192.0.0.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["224.0.0.0", 4], ["240.0.0.0", 4],
  ];
  const v6: [string, number][] = [["::", 128], ["::1", 128], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8]];
  for (const [net, prefix] of v4) list.addSubnet(net, prefix, "ipv4");
  for (const [net, prefix] of v6) list.addSubnet(net, prefix, "ipv6");
  return list;
}

export function createNetRelay(options: NetRelayOptions = {}): RelayEndpoint {
  const maxStreams = options.maxStreams ?? 64;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const blockList = options.privateDestinations === "allow" ? undefined : nonPublicAddresses();
  return {
    attach(send: (frame: HostRelayFrame) => void): RelaySession {
      /** `waiting`: the enclave was asked to pause until the socket drains. */
      const streams = new Map<number, { socket: Socket; destination: string; waiting: boolean }>();
      const refuse = (stream: number, error: string) => send({ net: "closed", stream, error });

      function open(stream: number, host: string, port: number): void {
        const destination = `${host}:${port}`;
        if (streams.has(stream)) return refuse(stream, "stream id already in use");
        if (streams.size >= maxStreams) return refuse(stream, `too many open streams (limit ${maxStreams})`);
        if (options.allow && !options.allow(host, port)) return refuse(stream, `the host does not relay to ${destination}`);
        const socket = connect({ host, port, timeout: connectTimeoutMs, ...(blockList ? { blockList } : {}) });
        let failure: string | undefined;
        streams.set(stream, { socket, destination, waiting: false });
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
            if (!entry.socket.write(frame.bytes) && !entry.waiting) {
              entry.waiting = true;
              send({ net: "pause", stream: frame.stream });
              entry.socket.once("drain", () => {
                entry.waiting = false;
                if (streams.get(frame.stream) === entry) send({ net: "resume", stream: frame.stream });
              });
            }
          } else if (frame.net === "pause") {
            entry.socket.pause();
          } else if (frame.net === "resume") {
            entry.socket.resume();
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
