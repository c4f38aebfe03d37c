/**
 * The byte relay's frames. They travel on the enclave's IPC channel beside
 * the call gate's request/response frames and are told apart by their `net`
 * key. Both sides validate what they receive with these schemas.
 *
 * The enclave asks for a stream to host:port and then sends and receives raw
 * bytes on it; those bytes are TLS records (the enclave runs TLS itself), so
 * the host carries them without ever holding a session key.
 *
 *   enclave -> host: open { stream, host, port } | data | end | pause | resume | close { stream }
 *   host -> enclave: opened { stream } | data | end | pause | resume | closed { stream, error? }
 *   (data { stream, bytes }, end/pause/resume { stream } in both directions)
 *
 * `end` half-closes the sender's direction; `close` (enclave) aborts a stream;
 * `closed` (host) reports that the stream is gone, with a short reason when it
 * failed. `pause` asks the other side to stop sending data on a stream until
 * `resume` (its receiver is full); what is already in flight still arrives.
 * Outbound stream ids are chosen by the enclave and are never negative.
 *
 * Inbound connections (listen.ts): the enclave asks the host to listen,
 *
 *   enclave -> host: listen { listener } | unlisten { listener }
 *   host -> enclave: listening { listener, host, port } | listen-failed { listener, reason }
 *                  | accepted { listener, stream }   (one per inbound TCP connection)
 *
 * Listener ids are chosen by the enclave. The stream id of an accepted
 * connection is chosen by the HOST and is always negative, so the two id
 * spaces never meet: the schemas refuse an `open` with a negative id and an
 * `accepted` with a non-negative one. After `accepted`, data/end/pause/resume
 * and close/closed carry the stream exactly like an outbound one. The address
 * in `listening` is what the host says peers dial; the enclave passes it on
 * but trusts nothing by it (peers are verified by attestation).
 */
import { z } from "zod";

/** Largest data frame either side sends or accepts. */
export const MAX_RELAY_CHUNK = 256 * 1024;

/**
 * Bytes of one stream either side holds before it asks the other to pause (the enclave's unread bytes, the
 * host's unsent ones). Node's default high-water mark (64 KiB) is below one data frame, so every frame cost a
 * pause and a resume, an IPC round trip each way: a bulk transfer was paced by those round trips.
 */
export const RELAY_WINDOW = 1024 * 1024;

/** An outbound stream (enclave-chosen id). */
const outboundStream = z.number().int().nonnegative().max(2 ** 31 - 1);
/** An inbound stream (host-chosen id): always negative. */
const inboundStream = z.number().int().min(-(2 ** 31 - 1)).max(-1);
const stream = z.union([outboundStream, inboundStream]);
const listener = z.number().int().nonnegative().max(2 ** 31 - 1);
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array && v.length > 0 && v.length <= MAX_RELAY_CHUNK, `must be a Uint8Array of 1..${MAX_RELAY_CHUNK} bytes`);

/** A DNS name or an IPv4/IPv6 literal; no ports, paths or spaces. */
export const relayHostSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|[0-9A-Fa-f:.]+)$/, "must be a host name or an IP address");
export const relayPortSchema = z.number().int().min(1).max(65535);

const data = z.object({ net: z.literal("data"), stream, bytes }).strict();
const end = z.object({ net: z.literal("end"), stream }).strict();
const pause = z.object({ net: z.literal("pause"), stream }).strict();
const resume = z.object({ net: z.literal("resume"), stream }).strict();

export const enclaveRelayFrameSchema = z.discriminatedUnion("net", [
  z.object({ net: z.literal("open"), stream: outboundStream, host: relayHostSchema, port: relayPortSchema }).strict(),
  z.object({ net: z.literal("listen"), listener }).strict(),
  z.object({ net: z.literal("unlisten"), listener }).strict(),
  data,
  end,
  pause,
  resume,
  z.object({ net: z.literal("close"), stream }).strict(),
]);
export type EnclaveRelayFrame = z.infer<typeof enclaveRelayFrameSchema>;

export const hostRelayFrameSchema = z.discriminatedUnion("net", [
  z.object({ net: z.literal("opened"), stream: outboundStream }).strict(),
  z.object({ net: z.literal("listening"), listener, host: relayHostSchema, port: relayPortSchema }).strict(),
  z.object({ net: z.literal("listen-failed"), listener, reason: z.string().max(200) }).strict(),
  z.object({ net: z.literal("accepted"), listener, stream: inboundStream }).strict(),
  data,
  end,
  pause,
  resume,
  // The host's reason is untrusted text: short, and only ever shown, never acted on.
  z.object({ net: z.literal("closed"), stream, error: z.string().max(200).optional() }).strict(),
]);
export type HostRelayFrame = z.infer<typeof hostRelayFrameSchema>;

/** True for anything shaped as a relay frame (`{ net: ... }`), valid or not: such frames never go to the call gate. */
export function isRelayFrame(raw: unknown): boolean {
  return typeof raw === "object" && raw !== null && "net" in raw;
}

/**
 * The host's side of the relay, as the enclave client sees it: `attach` is
 * called once per enclave process with the function that sends frames to it.
 */
export interface RelayEndpoint {
  attach(send: (frame: HostRelayFrame) => void): RelaySession;
}

export interface RelaySession {
  /** A validated frame from the enclave. */
  receive(frame: EnclaveRelayFrame): void;
  /** The enclave is gone: drop every stream. */
  close(): void;
}
