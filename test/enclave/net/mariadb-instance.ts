/**
 * A throwaway MariaDB for the network tests: mariadb-install-db in a temp
 * dir, TLS on with a self-signed certificate made here, TCP on a free
 * loopback port; `tls: true` requires secure transport (the server refuses
 * plaintext over TCP), `tls: false` starts it without TLS at all. A user with
 * a password is created over the unix socket (secure by MariaDB's rules),
 * so the tests can show the password only travels inside TLS.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, selfSignedCertificate } from "./postgres-instance.ts";

const SERVER = "/usr/sbin/mariadbd";
const INSTALL = "/usr/bin/mariadb-install-db";

export interface MariadbInstance {
  host: "127.0.0.1";
  port: number;
  user: string;
  password: string;
  database: string;
  /** The server certificate (PEM); absent without TLS. */
  certPem?: string;
  /** Runs SQL as root over the unix socket (the data owner's own access). */
  admin(sql: string): string;
  stop(): Promise<void>;
}

/** Why MariaDB cannot be started here, or false. */
export function mariadbSkip(): string | false {
  return existsSync(SERVER) && existsSync(INSTALL) ? false : `MariaDB binaries not found (${SERVER}, ${INSTALL})`;
}

async function ready(socket: string, server: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (server.exitCode !== null) throw new Error(`mariadbd exited (${server.exitCode}): ${log()}`);
    try {
      execFileSync("mariadb", ["--no-defaults", "-S", socket, "-u", "root", "-e", "SELECT 1"], { stdio: "ignore" });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error(`mariadbd did not accept connections within 30 s: ${log()}`);
}

export async function startMariadb(options: { tls: boolean }): Promise<MariadbInstance> {
  const dir = mkdtempSync(join(tmpdir(), "cloister-mariadb-"));
  const data = join(dir, "data");
  const socket = join(dir, "sock");
  const asRoot = process.getuid?.() === 0 ? ["--user=root"] : [];
  const user = "cloister_job";
  const password = `pw-${process.pid}-${Date.now()}`;
  const database = "cloister_shop";
  const admin = (sql: string) => execFileSync("mariadb", ["--no-defaults", "-S", socket, "-u", "root", "-N", "-B", "-e", sql], { encoding: "utf8" });
  let server: ChildProcess | undefined;
  let output = "";
  const stop = async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once("exit", resolve));
      server.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    execFileSync(INSTALL, ["--no-defaults", `--datadir=${data}`, "--auth-root-authentication-method=normal", "--skip-test-db", ...asRoot], { stdio: "ignore" });
    const port = await freePort();
    const tls = options.tls ? selfSignedCertificate(dir, "localhost") : undefined;
    const args = [
      "--no-defaults",
      ...asRoot,
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--pid-file=${join(dir, "pid")}`,
      "--skip-log-bin",
      "--innodb-buffer-pool-size=16M",
      ...(tls ? [`--ssl-cert=${tls.certFile}`, `--ssl-key=${tls.keyFile}`, "--require-secure-transport=ON"] : ["--skip-ssl"]),
    ];
    server = spawn(SERVER, args, { stdio: ["ignore", "ignore", "pipe"] });
    server.stderr?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
    await ready(socket, server, () => output);
    admin(`CREATE DATABASE ${database}; CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}'; GRANT ALL ON ${database}.* TO '${user}'@'127.0.0.1'`);
    return { host: "127.0.0.1", port, user, password, database, ...(tls ? { certPem: tls.certPem } : {}), admin, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
