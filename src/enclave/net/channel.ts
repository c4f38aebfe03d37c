/**
 * The enclave's end of the byte relay: raw streams to host:port, carried by
 * the host as relay frames (frames.ts). A RelaySocket is a Duplex with the
 * few net.Socket methods socket-taking libraries call (connect, setNoDelay,
 * setKeepAlive, ref, unref); the enclave never writes plaintext on it, only
 * TLS (see connect.ts).
 *
 * Flow control: when the readable side is full the socket sends `pause` and
 * sends `resume` when it is read again; a `pause` from the host holds writes
 * until its `resume`.
 */
import { hostRelayFrameSchema, MAX_RELAY_CHUNK, RELAY_WINDOW, relayHostSchema, relayPortSchema, type EnclaveRelayFrame, type HostRelayFrame } from "./frames.ts";
import { SocketLikeDuplex } from "./socket-like.ts";
import { NetError } from "./errors.ts";

/** How the channel reaches the host: send a frame, hear the host's relay frames (unvalidated; the channel validates them). */
export interface RelayPort {
  send(frame: EnclaveRelayFrame): void;
  onFrame(listener: (raw: unknown) => void): void;
}

export interface RelayChannel {
  /** An unconnected socket; `connect(port, host)` asks the host to open the stream. */
  socket(): RelaySocket;
  /** Opens a stream to host:port; resolves once the host reports it open. */
  open(host: string, port: number): Promise<RelaySocket>;
  /** Asks the host to listen for inbound TCP connections; resolves once it reports the address (NET_LISTEN_FAILED if it will not). */
  listen(): Promise<RelayListener>;
}

/** A host-side TCP listener whose connections arrive as raw relay streams (already open). */
export interface RelayListener {
  readonly id: number;
  /** host:port as the host reports it: untrusted, only passed on to peers. */
  readonly address: { host: string; port: number };
  /** Each inbound stream; streams accepted before a handler is set wait for it. */
  onStream(handler: (socket: RelaySocket) => void): void;
  /** Asks the host to stop listening; streams already accepted stay open. */
  close(): void;
}

type State = "new" | "opening" | "open" | "closed";

/** What an honest relay may still deliver after `pause` (frames in flight); a host that sends past it is cut off. */
const MAX_BUFFERED_AFTER_PAUSE = 16 * 1024 * 1024;

/** What a socket needs from its channel. */
interface ChannelLink {
  send(frame: EnclaveRelayFrame): void;
  register(id: number, socket: RelaySocket): void;
  forget(id: number): void;
  nextId(): number;
}

export class RelaySocket extends SocketLikeDuplex {
  readonly #channel: ChannelLink;
  #id = -1;
  #state: State = "new";
  /** A write that waits for `opened` or the host's `resume`. */
  #held: (() => void) | undefined;
  /** The host asked this side to stop sending. */
  #writeBlocked = false;
  /** This side asked the host to stop sending. */
  #readPaused = false;
  /** The host ended its direction. */
  #remoteEnded = false;
  #destination = "";

  constructor(channel: ChannelLink) {
    super({ allowHalfOpen: true, readableHighWaterMark: RELAY_WINDOW });
    this.#channel = channel;
  }

  /** A stream the host accepted on a listener: open from the start, under the host's (negative) id. */
  static accepted(channel: ChannelLink, id: number, listener: number): RelaySocket {
    const socket = new RelaySocket(channel);
    socket.#id = id;
    socket.#state = "open";
    socket.#destination = `inbound#${-id} on listener ${listener}`;
    channel.register(id, socket);
    return socket;
  }

  get destination(): string {
    return this.#destination;
  }

  /** Asks the host to open a stream to host:port; emits "connect" when it is open. */
  connect(port: number, host: string): this {
    if (this.#state !== "new") throw new NetError("NET_BAD_DESTINATION", "this relay socket was already connected; open a new one");
    const h = relayHostSchema.safeParse(host);
    const p = relayPortSchema.safeParse(port);
    if (!h.success || !p.success) {
      throw new NetError("NET_BAD_DESTINATION", `not a destination the relay can open: ${String(host)}:${String(port)}; give a host name or IP and a port 1..65535`);
    }
    this.#id = this.#channel.nextId();
    this.#state = "opening";
    this.#destination = `${h.data}:${p.data}`;
    this.#channel.register(this.#id, this);
    this.#channel.send({ net: "open", stream: this.#id, host: h.data, port: p.data });
    return this;
  }

  /** A validated frame from the host for this stream. */
  receive(frame: HostRelayFrame): void {
    switch (frame.net) {
      case "opened":
        if (this.#state !== "opening") return this.#broken("opened twice");
        this.#state = "open";
        this.emit("connect");
        this.#release();
        return;
      case "data":
        if (this.#state !== "open") return this.#broken("data before the stream was open");
        if (this.#remoteEnded) return this.#broken("data after end");
        if (this.#readPaused && this.readableLength > MAX_BUFFERED_AFTER_PAUSE) return this.#broken(`more than ${MAX_BUFFERED_AFTER_PAUSE} bytes buffered after pause`);
        if (!this.push(frame.bytes) && !this.#readPaused) {
          this.#readPaused = true;
          this.#channel.send({ net: "pause", stream: this.#id });
        }
        return;
      case "pause":
      case "resume":
        if (this.#state !== "open") return this.#broken(`${frame.net} before the stream was open`);
        this.#writeBlocked = frame.net === "pause";
        if (!this.#writeBlocked) this.#release();
        return;
      case "end":
        if (this.#state !== "open") return this.#broken("end before the stream was open");
        if (this.#remoteEnded) return;
        this.#remoteEnded = true;
        this.push(null);
        return;
      case "closed": {
        const wasOpening = this.#state === "opening";
        this.#state = "closed";
        this.#channel.forget(this.#id);
        const reason = frame.error ? `: ${frame.error}` : "";
        if (wasOpening) {
          this.destroy(new NetError("NET_CONNECT_FAILED", `the host's relay could not open ${this.#destination}${reason}`, { details: { destination: this.#destination } }));
        } else if (frame.error) {
          this.destroy(new NetError("NET_STREAM_CLOSED", `the relay closed the stream to ${this.#destination}${reason}`, { details: { destination: this.#destination } }));
        } else {
          // A clean close ends the readable side; the stream is destroyed once it is read to the end (autoDestroy).
          // A write still held fails now: there is no socket left to carry it.
          if (!this.#remoteEnded) this.push(null);
          this.#remoteEnded = true;
          const held = this.#held;
          this.#held = undefined;
          held?.();
        }
      }
    }
  }

  #broken(problem: string): void {
    this.destroy(new NetError("NET_STREAM_CLOSED", `the relay broke the stream protocol for ${this.#destination} (${problem})`));
  }

  /** Runs the held write once the stream is open and not paused. */
  #release(): void {
    if (this.#state !== "open" || this.#writeBlocked || !this.#held) return;
    const held = this.#held;
    this.#held = undefined;
    held();
  }

  override _read(): void {
    if (this.#readPaused && this.#state === "open") {
      this.#readPaused = false;
      this.#channel.send({ net: "resume", stream: this.#id });
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const send = () => {
      if (this.#state !== "open") return callback(new NetError("NET_STREAM_CLOSED", `the stream to ${this.#destination} is closed`));
      for (let at = 0; at < chunk.length; at += MAX_RELAY_CHUNK) {
        this.#channel.send({ net: "data", stream: this.#id, bytes: new Uint8Array(chunk.subarray(at, at + MAX_RELAY_CHUNK)) });
      }
      callback();
    };
    if (chunk.length === 0) return callback();
    if (this.#state === "opening" || this.#state === "new" || this.#writeBlocked) this.#held = send;
    else send();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#state === "open") this.#channel.send({ net: "end", stream: this.#id });
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#state === "opening" || this.#state === "open") {
      // Both directions ended cleanly: the host's socket closes by itself once it has flushed; anything else is an abort.
      const clean = !error && this.readableEnded && this.writableFinished;
      if (!clean) this.#channel.send({ net: "close", stream: this.#id });
      this.#channel.forget(this.#id);
    }
    this.#state = "closed";
    this.#held = undefined;
    callback(error);
  }
}

interface PendingListener {
  resolve(listener: RelayListener): void;
  reject(error: Error): void;
}

interface ActiveListener {
  handler: ((socket: RelaySocket) => void) | undefined;
  backlog: RelaySocket[];
}

export function createRelayChannel(port: RelayPort): RelayChannel {
  const sockets = new Map<number, RelaySocket>();
  const pending = new Map<number, PendingListener>();
  const listeners = new Map<number, ActiveListener>();
  let next = 1;
  let nextListener = 1;
  const link: ChannelLink = {
    send: (frame: EnclaveRelayFrame) => port.send(frame),
    register: (id: number, socket: RelaySocket) => void sockets.set(id, socket),
    forget: (id: number) => void sockets.delete(id),
    nextId: () => next++,
  };

  function onListenerFrame(frame: Extract<HostRelayFrame, { net: "listening" | "listen-failed" | "accepted" }>): void {
    if (frame.net === "accepted") {
      const active = listeners.get(frame.listener);
      // A stream for a listener this enclave does not hold, or an id already in use: refuse it.
      if (!active || sockets.has(frame.stream)) return port.send({ net: "close", stream: frame.stream });
      const socket = RelaySocket.accepted(link, frame.stream, frame.listener);
      if (active.handler) active.handler(socket);
      else active.backlog.push(socket);
      return;
    }
    const waiting = pending.get(frame.listener);
    if (!waiting) return;
    pending.delete(frame.listener);
    if (frame.net === "listen-failed") {
      return waiting.reject(new NetError("NET_LISTEN_FAILED", `the host would not listen for this enclave: ${frame.reason}`));
    }
    const id = frame.listener;
    const active: ActiveListener = { handler: undefined, backlog: [] };
    listeners.set(id, active);
    waiting.resolve({
      id,
      address: { host: frame.host, port: frame.port },
      onStream(handler) {
        active.handler = handler;
        for (const socket of active.backlog.splice(0)) handler(socket);
      },
      close() {
        if (!listeners.delete(id)) return;
        for (const socket of active.backlog.splice(0)) socket.destroy();
        port.send({ net: "unlisten", listener: id });
      },
    });
  }

  port.onFrame((raw) => {
    const parsed = hostRelayFrameSchema.safeParse(raw);
    if (!parsed.success) {
      // A frame the enclave cannot read: the stream it names (if any) can no longer be trusted to be whole.
      const id = (raw as { stream?: unknown }).stream;
      if (typeof id === "number") sockets.get(id)?.destroy(new NetError("NET_STREAM_CLOSED", "the host sent a malformed relay frame; the stream was dropped"));
      return;
    }
    const frame = parsed.data;
    if (frame.net === "listening" || frame.net === "listen-failed" || frame.net === "accepted") return onListenerFrame(frame);
    sockets.get(frame.stream)?.receive(frame);
  });
  const socket = () => new RelaySocket(link);
  return {
    socket,
    open: (host, p) =>
      new Promise((resolve, reject) => {
        const s = socket();
        const onError = (e: Error) => reject(e);
        s.once("error", onError);
        s.once("connect", () => {
          s.removeListener("error", onError);
          resolve(s);
        });
        try {
          s.connect(p, host);
        } catch (e) {
          reject(e as Error);
        }
      }),
    listen: () =>
      new Promise((resolve, reject) => {
        const id = nextListener++;
        pending.set(id, { resolve, reject });
        port.send({ net: "listen", listener: id });
      }),
  };
}
