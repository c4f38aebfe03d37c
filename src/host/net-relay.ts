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
 *
 * Inbound (`inbound` option): the enclave may ask the host to listen. The
 * relay opens a TCP server on `bindHost` (ephemeral port), reports the
 * address to the enclave (`listening`) and to the operator (`onListening`,
 * `listeners()`), and hands each connection to the enclave as a stream with
 * a negative, host-chosen id (`accepted`), carried like an outbound one. TLS
 * is again the enclave's own (mutual attested TLS, src/enclave/net/listen.ts):
 * the host learns who connects from where, and sizes and timing, nothing
 * else. Without `inbound` every listen is refused.
 */
import { BlockList, connect, createServer, type Server, type Socket } from "node:net";
import { MAX_RELAY_CHUNK, RELAY_WINDOW, type EnclaveRelayFrame, type HostRelayFrame, type RelayEndpoint, type RelaySession } from "../enclave/net/frames.ts";

export interface CarriedBytes {
  direction: "to-destination" | "to-enclave";
  stream: number;
  /** host:port as the enclave asked for it; for an inbound stream, the peer's address and `-> ` the listener's. */
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
  /** Lets the enclave listen for inbound connections; without it every listen is refused. */
  inbound?: InboundOptions;
}

export interface InboundOptions {
  /** The address the listeners bind; "127.0.0.1" by default. */
  bindHost?: string;
  /** The host name or IP peers should dial (reported to the enclave and to onListening); `bindHost` by default. */
  advertiseHost?: string;
  /** Listeners one enclave may hold at once; 8 by default. */
  maxListeners?: number;
  /** Inbound connections one enclave may hold open at once (over all its listeners); 64 by default. Further ones are closed at once. */
  maxConnections?: number;
  /** Called when a listener is up, with the address peers dial (for the node to advertise). */
  onListening?: (listening: RelayListening) => void;
}

export interface RelayListening {
  /** The enclave's listener id (unique per enclave session). */
  listener: number;
  host: string;
  port: number;
}

export interface NetRelay extends RelayEndpoint {
  /** The listeners open now, over every attached enclave. */
  listeners(): RelayListening[];
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

export function createNetRelay(options: NetRelayOptions = {}): NetRelay {
  const maxStreams = options.maxStreams ?? 64;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const blockList = options.privateDestinations === "allow" ? undefined : nonPublicAddresses();
  const inbound = options.inbound;
  const open: Set<RelayListening> = new Set();
  return {
    listeners: () => [...open].map((l) => ({ ...l })),
    attach(send: (frame: HostRelayFrame) => void): RelaySession {
      /** `waiting`: the enclave was asked to pause until the socket drains. */
      const streams = new Map<number, { socket: Socket; destination: string; waiting: boolean }>();
      const servers = new Map<number, { server: Server; listening?: RelayListening }>();
      let inboundCount = 0;
      let nextInbound = -1;
      let closed = false;
      const refuse = (stream: number, error: string) => send({ net: "closed", stream, error });

      /** Carries one TCP socket's bytes to the enclave as `stream` (outbound or accepted). */
      function carry(stream: number, socket: Socket, destination: string, onGone?: () => void): void {
        let failure: string | undefined;
        streams.set(stream, { socket, destination, waiting: false });
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
          onGone?.();
          if (streams.get(stream)?.socket !== socket) return;
          streams.delete(stream);
          send(failure ? { net: "closed", stream, error: failure } : { net: "closed", stream });
        });
      }

      function listen(listener: number): void {
        const failed = (reason: string) => send({ net: "listen-failed", listener, reason });
        if (!inbound) return failed("this host accepts no inbound connections");
        if (servers.has(listener)) return failed("listener id already in use");
        if (servers.size >= (inbound.maxListeners ?? 8)) return failed(`too many listeners (limit ${inbound.maxListeners ?? 8})`);
        const bindHost = inbound.bindHost ?? "127.0.0.1";
        const server = createServer({ allowHalfOpen: true, pauseOnConnect: false, noDelay: true });
        const entry: { server: Server; listening?: RelayListening } = { server };
        servers.set(listener, entry);
        server.on("connection", (socket: Socket) => {
          if (closed || inboundCount >= (inbound.maxConnections ?? 64)) return void socket.destroy();
          const stream = nextInbound--;
          inboundCount++;
          const from = `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
          send({ net: "accepted", listener, stream });
          carry(stream, socket, `${from} -> ${entry.listening ? `${entry.listening.host}:${entry.listening.port}` : "?"}`, () => inboundCount--);
        });
        server.once("error", (e: NodeJS.ErrnoException) => {
          servers.delete(listener);
          if (!entry.listening) failed((e.code ?? e.message).slice(0, 200));
        });
        server.listen(0, bindHost, () => {
          const address = server.address();
          if (closed || servers.get(listener) !== entry || address === null || typeof address === "string") return void server.close();
          const listening = { listener, host: inbound.advertiseHost ?? bindHost, port: address.port };
          entry.listening = listening;
          open.add(listening);
          send({ net: "listening", ...listening });
          inbound.onListening?.({ ...listening });
        });
      }

      function unlisten(listener: number): void {
        const entry = servers.get(listener);
        if (!entry) return;
        servers.delete(listener);
        if (entry.listening) open.delete(entry.listening);
        entry.server.close();
      }

      function dial(stream: number, host: string, port: number): void {
        const destination = `${host}:${port}`;
        if (streams.has(stream)) return refuse(stream, "stream id already in use");
        if (streams.size >= maxStreams) return refuse(stream, `too many open streams (limit ${maxStreams})`);
        if (options.allow && !options.allow(host, port)) return refuse(stream, `the host does not relay to ${destination}`);
        const socket = connect({ host, port, timeout: connectTimeoutMs, noDelay: true, ...(blockList ? { blockList } : {}) });
        socket.once("connect", () => {
          socket.setTimeout(0);
          send({ net: "opened", stream });
        });
        socket.once("timeout", () => socket.destroy(new Error(`connect timed out after ${connectTimeoutMs} ms`)));
        carry(stream, socket, destination);
      }

      return {
        receive(frame: EnclaveRelayFrame): void {
          if (frame.net === "open") return dial(frame.stream, frame.host, frame.port);
          if (frame.net === "listen") return listen(frame.listener);
          if (frame.net === "unlisten") return unlisten(frame.listener);
          const entry = streams.get(frame.stream);
          if (!entry) return;
          if (frame.net === "data") {
            options.onCarried?.({ direction: "to-destination", stream: frame.stream, destination: entry.destination, bytes: frame.bytes });
            entry.socket.write(frame.bytes);
            // Paused only past the relay window (the socket's own high-water mark is below one frame); 'drain' follows once it is flushed.
            if (entry.socket.writableLength >= RELAY_WINDOW && !entry.waiting) {
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
          closed = true;
          for (const listener of [...servers.keys()]) unlisten(listener);
          for (const { socket } of streams.values()) socket.destroy();
          streams.clear();
        },
      };
    },
  };
}
