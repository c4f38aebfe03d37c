/**
 * Where the machine's real servers are (the standard env vars, with the
 * defaults the project brief gives), and a reachability probe so a test can
 * skip with a clear message when a server is down, and only then.
 */
import { connect } from "node:net";
import { randomBytes } from "node:crypto";
import type { Row } from "../../../src/enclave/connectors/types.ts";

const env = process.env;

export const pg = {
  host: env.PGHOST ?? "127.0.0.1",
  port: Number(env.PGPORT ?? 5432),
  user: env.PGUSER ?? "postgres",
  database: env.PGDATABASE ?? "test",
};
export const pgUrl = `postgres://${encodeURIComponent(pg.user)}@${pg.host}:${pg.port}/${pg.database}`;

export const my = {
  host: env.MYSQL_HOST ?? "127.0.0.1",
  port: Number(env.MYSQL_PORT ?? 3306),
  user: env.MYSQL_USER ?? "root",
  database: env.MYSQL_DATABASE ?? "test",
};
export const mysqlUrl = `mysql://${encodeURIComponent(my.user)}@${my.host}:${my.port}/${my.database}`;

export const natsUrl = env.NATS_URL ?? "nats://127.0.0.1:4222";

/** A name no other test run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/** Why the server is unreachable, or undefined when a TCP connection opens. */
export function unreachable(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(2_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(`nothing answers at ${host}:${port} (timeout)`);
    });
    socket.once("error", (error) => resolve(`nothing answers at ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? error.message})`));
  });
}

/** A port nothing listens on: bind one, note it, close it. */
export async function closedPort(): Promise<number> {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Reads a dataset to its end: every row, and the size of each batch it came in. */
export async function drain(reader: AsyncIterable<readonly Row[]>): Promise<{ rows: Row[]; sizes: number[] }> {
  const rows: Row[] = [];
  const sizes: number[] = [];
  for await (const batch of reader) {
    sizes.push(batch.length);
    rows.push(...batch);
  }
  return { rows, sizes };
}
