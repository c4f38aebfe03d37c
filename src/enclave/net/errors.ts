/**
 * Why an enclave network connection failed. Thrown inside the enclave to the
 * job code that asked for the connection; these never cross the call gate.
 */
import { CloisterError, type CloisterErrorOptions } from "../../util/base-error.ts";

export type NetErrorCode =
  /** The destination is not a valid host name / port, or a library asked for another one than the pinned destination. */
  | "NET_BAD_DESTINATION"
  /** The host's relay could not (or would not) open the stream. */
  | "NET_CONNECT_FAILED"
  /** The relay closed or reset the stream, or sent something that breaks the relay protocol. */
  | "NET_STREAM_CLOSED"
  /** The server declined the protocol's TLS upgrade (e.g. PostgreSQL answered 'N' to SSLRequest). */
  | "NET_STARTTLS_REFUSED"
  /** The TLS handshake itself failed. */
  | "NET_TLS_FAILED"
  /** The server's certificate is not the pinned one. */
  | "NET_PIN_MISMATCH"
  /** The server's attested certificate was refused (the cause is the AttestedTlsError). */
  | "NET_PEER_REFUSED"
  /** An attested destination needs this enclave's attested certificate, and none was configured. */
  | "NET_NO_CERTIFICATE"
  /** The host would not listen for inbound connections (it offers none, or a limit was reached). */
  | "NET_LISTEN_FAILED"
  /** A length-prefixed message was over the agreed maximum, or the stream ended in the middle of one (messages.ts). */
  | "NET_BAD_MESSAGE";

export class NetError extends CloisterError<NetErrorCode> {
  constructor(code: NetErrorCode, shortMessage: string, options?: CloisterErrorOptions) {
    super(code, shortMessage, options);
  }
}
