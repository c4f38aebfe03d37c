/**
 * Listening on a loopback address, for Cloister's local HTTP services (chain
 * JSON-RPC, Kubo RPC, attestation service, node health): none of them has
 * authentication, so none may listen anywhere else.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["127.0.0.1", "::1", "localhost"]);

export interface ListeningServer {
  /** e.g. http://127.0.0.1:8545 */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/** Listens on host:port (0 = a free port); a failure to listen is turned into the caller's own error. */
export async function listenOnLoopback(server: Server, host: string, port: number, listenError: (cause: Error) => Error): Promise<ListeningServer> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(listenError(err)));
    server.listen(port, host, () => resolve());
  });
  // Once listening, the server's own errors are failed accepts (EMFILE under a flood of connections): the
  // server keeps listening, so they must not reach the process as an unhandled "error" event.
  server.on("error", () => {});
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
