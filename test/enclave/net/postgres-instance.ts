/**
 * A throwaway PostgreSQL 15 for the network tests: initdb in a temp dir,
 * TLS on with a self-signed certificate made here, TCP on a free loopback
 * port (hostssl only: the server refuses plaintext), unix socket in the temp
 * dir. initdb refuses to run as root, so as root the server runs as the
 * `postgres` user through runuser (or su), in a temp dir it owns.
 */
import { execFileSync } from "node:child_process";
import { chownSync, chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BIN = "/usr/lib/postgresql/15/bin";

export interface PostgresInstance {
  host: "127.0.0.1";
  port: number;
  user: string;
  password: string;
  database: string;
  certPem: string;
  stop(): void;
}

/** A self-signed P-256 certificate and key (PEM), made with the openssl CLI. */
export function selfSignedCertificate(dir: string, name: string): { certPem: string; keyPem: string; certFile: string; keyFile: string } {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", `/CN=${name}`], { stdio: "ignore" });
  return { certPem: readFileSync(certFile, "utf8"), keyPem: readFileSync(keyFile, "utf8"), certFile, keyFile };
}

function ids(user: string): { uid: number; gid: number } | undefined {
  try {
    return { uid: Number(execFileSync("id", ["-u", user]).toString()), gid: Number(execFileSync("id", ["-g", user]).toString()) };
  } catch {
    return undefined;
  }
}

/** How to run the PostgreSQL binaries here, or why it cannot be done. */
export function postgresRunner(): { run: (bin: string, args: string[]) => void; owner?: { uid: number; gid: number } } | { skip: string } {
  if (!existsSync(join(BIN, "initdb"))) return { skip: `PostgreSQL 15 binaries not found at ${BIN}` };
  if (process.getuid?.() !== 0) return { run: (bin, args) => void execFileSync(join(BIN, bin), args, { stdio: "ignore" }) };
  const owner = ids("postgres");
  if (!owner) return { skip: "running as root and there is no postgres user to run initdb as (initdb refuses root)" };
  const tries: [string, string[]][] = [["runuser", ["-u", "postgres", "--", "true"]], ["su", ["postgres", "-s", "/bin/sh", "-c", "true"]]];
  for (const [cmd, args] of tries) {
    try {
      execFileSync(cmd, args, { stdio: "ignore" });
    } catch {
      continue;
    }
    const run = cmd === "runuser"
      ? (bin: string, a: string[]) => void execFileSync("runuser", ["-u", "postgres", "--", join(BIN, bin), ...a], { stdio: "ignore" })
      : (bin: string, a: string[]) => void execFileSync("su", ["postgres", "-s", "/bin/sh", "-c", [join(BIN, bin), ...a].map((x) => `'${x.replaceAll("'", "'\\''")}'`).join(" ")], { stdio: "ignore" });
    return { run, owner };
  }
  return { skip: "running as root and neither runuser nor su can run commands as postgres (initdb refuses root)" };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startPostgres(runner: Exclude<ReturnType<typeof postgresRunner>, { skip: string }>): Promise<PostgresInstance> {
  const dir = mkdtempSync(join(tmpdir(), "cloister-pg-"));
  const data = join(dir, "data");
  const user = "cloister_job";
  const password = `pw-${process.pid}-${Date.now()}`;
  const database = "cloister_vault";
  const tls = selfSignedCertificate(dir, "localhost");
  writeFileSync(join(dir, "pw"), password);
  chmodSync(tls.keyFile, 0o600);
  if (runner.owner) for (const f of [dir, tls.keyFile, tls.certFile, join(dir, "pw")]) chownSync(f, runner.owner.uid, runner.owner.gid);
  const stop = () => {
    try {
      runner.run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
    } catch {
      // Not running.
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    runner.run("initdb", ["-D", data, "-U", user, `--pwfile=${join(dir, "pw")}`, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"]);
    const port = await freePort();
    const conf = [
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      "ssl = on",
      `ssl_cert_file = '${tls.certFile}'`,
      `ssl_key_file = '${tls.keyFile}'`,
      "fsync = off",
    ].join("\n");
    writeFileSync(join(data, "postgresql.auto.conf"), `${conf}\n`);
    // Over TCP only TLS sessions are accepted.
    writeFileSync(join(data, "pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n");
    runner.run("pg_ctl", ["-D", data, "-l", join(dir, "server.log"), "-w", "-t", "30", "start"]);
    runner.run("psql", ["-h", dir, "-p", String(port), "-U", user, "-d", "postgres", "-c", `CREATE DATABASE ${database}`]);
    return { host: "127.0.0.1", port, user, password, database, certPem: tls.certPem, stop };
  } catch (e) {
    stop();
    throw e;
  }
}
