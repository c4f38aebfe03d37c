/** A two-node `devnet up` and the CLI as users run it, for the clean-room network tests (test/cli/collab-network*.test.ts). */
import { execFile, spawn } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";

const exec = promisify(execFile);
const cli = new URL("../../bin/cloister.js", import.meta.url).pathname;
const example = new URL("../../examples/clean-room/", import.meta.url).pathname;

/** Devnet accounts 0 and 1 (the standard test mnemonic): the retailer and the bank. */
export const PARTY_ACCOUNTS = ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"] as const;

export async function cloister(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [cli, ...args], { env: { ...process.env, CLOISTER_NETWORK: "", CLOISTER_PRIVATE_KEY: "", CLOISTER_PROGRESS: "" } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

export const lastJson = (text: string) => JSON.parse(text.trim().split("\n").at(-1)!) as Record<string, unknown>;

export interface CollabDevnet {
  netDir: string;
  /** The nodes' enclave signers, as `devnet up` prints them. */
  signers: string[];
  rpc: string;
  ipfs: string;
  stop(): Promise<void>;
}

/** Starts `devnet up --nodes n` in a fresh folder (added to `dirs`, for `cleanup`) and waits for "ready". */
export async function startCollabDevnet(dirs: string[], nodes = 2): Promise<CollabDevnet> {
  const netDir = await mkdtemp(join(tmpdir(), "cloister-collab-devnet-"));
  dirs.push(netDir);
  const devnet = spawn(process.execPath, [cli, "devnet", "up", "--nodes", String(nodes), "--dir", netDir, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CLOISTER_PROGRESS: "" } });
  const exited = new Promise<number | null>((resolve) => devnet.once("exit", (code) => resolve(code)));
  const stop = async () => {
    devnet.kill("SIGINT");
    await exited;
  };
  const signers: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: devnet.stdout }).on("line", (line) => {
        const node = /^\s*node (\d+)\s.*signer (0x[0-9a-fA-F]{40})/.exec(line);
        if (node) signers[Number(node[1])] = node[2]!;
        if (line === "ready") resolve();
      });
      void exited.then((code) => reject(new Error(`devnet up exited (${code}) before ready`)));
    });
  } catch (e) {
    await stop();
    throw e;
  }
  const { endpoints } = JSON.parse(await readFile(join(netDir, "network.json"), "utf8")) as { endpoints: { rpc: string; ipfs: string } };
  return { netDir, signers, rpc: endpoints.rpc, ipfs: endpoints.ipfs, stop };
}

/** A copy of the example collaboration in a fresh folder (removed by `cleanup`), its parties on devnet accounts 0 and 1, edited by `edit`. */
export async function exampleCopy(dirs: string[], edit: (file: Record<string, unknown> & { parties: Record<string, unknown>[] }) => void = () => {}): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), "cloister-collab-net-"));
  dirs.push(dir);
  await cp(example, dir, { recursive: true });
  const file = JSON.parse(await readFile(join(dir, "collaboration.json"), "utf8")) as Record<string, unknown> & { parties: Record<string, unknown>[] };
  file.parties.forEach((p, i) => (p.account = PARTY_ACCOUNTS[i]));
  edit(file);
  await writeFile(join(dir, "collaboration.json"), JSON.stringify(file));
  return { dir, file: join(dir, "collaboration.json") };
}

export const cleanup = (dirs: string[]) => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
