/**
 * A database descriptor's `pin` (hex SHA-256 of the server certificate's DER; postgres and mysql): the
 * connection then goes through the enclave's network with TLS terminating in the enclave and that
 * certificate pinned (docs/connectors.md). Pipelines, grants' datasets and clean-room datasets share this;
 * without the enclave's network a pinned endpoint is refused rather than opened in the clear.
 */
import type { EnclaveNet } from "../net/connect.ts";
import { ConnectorError } from "./errors.ts";
import type { ConnectorNetwork } from "./types.ts";

/** The descriptor without `pin`, and the pin (checked: postgres or mysql, 64 hex digits), if it names one. */
export function splitPin<T extends object>(descriptor: T): { descriptor: T; pin?: string } {
  const { pin, ...rest } = descriptor as T & { pin?: unknown };
  if (pin === undefined) return { descriptor };
  const type = (descriptor as { type?: unknown }).type;
  if ((type !== "postgres" && type !== "mysql") || typeof pin !== "string" || !/^[0-9a-fA-F]{64}$/.test(pin)) {
    throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", `"pin" (the hex SHA-256 of the server certificate) is for postgres and mysql sources and destinations (nats over the enclave network is not built)`);
  }
  return { descriptor: rest as T, pin };
}

/** The descriptor to open and, for a pinned one, the enclave network to open it through. */
export function databaseEndpoint<T extends object>(descriptor: T, net: EnclaveNet | undefined): { descriptor: T; network?: ConnectorNetwork } {
  const { descriptor: plain, pin } = splitPin(descriptor);
  if (pin === undefined) return { descriptor };
  if (!net) throw new ConnectorError("CONNECTOR_BAD_DESCRIPTOR", "a pinned database connection needs the enclave's network (the host's relay); refusing to connect without TLS");
  return { descriptor: plain, network: { net, pin: { kind: "certificate", sha256: pin } } };
}
