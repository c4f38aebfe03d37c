/**
 * The part of net.Socket's surface that node:tls and pg call on any stream
 * they are handed, as no-ops: the enclave's streams have no kernel socket of
 * their own to tune or to keep the event loop alive with.
 */
import { Duplex } from "node:stream";

export class SocketLikeDuplex extends Duplex {
  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }
}
