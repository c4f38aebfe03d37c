/**
 * The vault hosts' HTTP face on a devnet: owners' CLIs (another process) reach
 * the slot enclaves' hosts through it. `POST /v1/vault/<method>` with
 * `{ enclave, params }`; the answer is `{ result }` or `{ error: { code,
 * message } }` (the enclave's refusal code, e.g. WRONG_OWNER). Only public
 * data and ciphertext cross it, as with the in-process directory. Bigints and
 * bytes travel tagged (`{"$n": "12"}`, `{"$b": "0x.."}`): vaultJsonEncode /
 * vaultJsonDecode. `POST /v1/vault/reshare` with `{ params: { tokenId, cluster }
 * }` asks the host of that cluster to re-share a token (when the server was
 * given `reshare`).
 */
import { createServer, type IncomingMessage } from "node:http";
import type { Address } from "viem";
import { CloisterError } from "../util/base-error.ts";
import { listenOnLoopback, type ListeningServer } from "../util/loopback-http.ts";
import type { VaultDirectory, VaultSlotApi } from "./vault-host.ts";

export function vaultJsonEncode(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === "bigint") return { $n: v.toString() };
    if (v instanceof Uint8Array) return { $b: `0x${Buffer.from(v).toString("hex")}` };
    return v;
  });
}

export function vaultJsonDecode(text: string): unknown {
  return JSON.parse(text, (_k, v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1 && typeof o.$n === "string" && /^-?\d+$/.test(o.$n)) return BigInt(o.$n);
      if (keys.length === 1 && typeof o.$b === "string" && /^0x([0-9a-f]{2})*$/.test(o.$b)) return Uint8Array.from(Buffer.from(o.$b.slice(2), "hex"));
    }
    return v;
  });
}

const methods = ["store", "storeMany", "retrieve", "status", "held", "exportShares"] as const;
type Method = (typeof methods)[number];

/** A cluster's re-share of one token, run by the host that supervises the cluster (VaultHost.reshare). */
export type VaultGatewayReshare = (p: { tokenId: bigint; cluster: bigint }) => Promise<{ version: bigint; newRoot: `0x${string}`; transactionHash: `0x${string}` }>;

export class VaultHttpError extends CloisterError<"VAULT_HTTP_LISTEN"> {}

/** A batched store of 1,000 secrets is about 2 MB of tagged JSON. */
const MAX_BODY = 32 * 1024 * 1024;

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error("body too large"), { code: "BAD_REQUEST" });
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function errorOf(e: unknown): { code: string; message: string } {
  const code = (e as { code?: unknown }).code;
  return { code: typeof code === "string" ? code : "INTERNAL", message: e instanceof CloisterError ? e.message : "internal error" };
}

/** Serves `directory` (and `reshare`, when given) on 127.0.0.1:`port` (0: a free port). */
export async function startVaultHttpServer(directory: VaultDirectory, port = 0, reshare?: VaultGatewayReshare): Promise<ListeningServer> {
  const server = createServer((req, res) => {
    const reply = (status: number, payload: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(vaultJsonEncode(payload));
    };
    const name = /^\/v1\/vault\/([a-zA-Z]+)$/.exec(req.url ?? "")?.[1];
    if (req.method === "POST" && reshare && name === "reshare") {
      return void body(req)
        .then(async (text) => {
          const { params } = vaultJsonDecode(text) as { params?: { tokenId?: unknown; cluster?: unknown } };
          if (typeof params?.tokenId !== "bigint" || typeof params.cluster !== "bigint") return reply(400, { error: { code: "BAD_REQUEST", message: "reshare takes params { tokenId, cluster } as tagged integers" } });
          reply(200, { result: await reshare({ tokenId: params.tokenId, cluster: params.cluster }) });
        })
        .catch((e: unknown) => reply(200, { error: errorOf(e) }));
    }
    const method = name as Method | undefined;
    if (req.method !== "POST" || !method || !methods.includes(method)) return reply(404, { error: { code: "NOT_FOUND", message: `POST /v1/vault/{${methods.join(",")}}` } });
    body(req)
      .then(async (text) => {
        const { enclave, params } = vaultJsonDecode(text) as { enclave?: Address; params?: unknown };
        const node = typeof enclave === "string" ? directory.node(enclave) : undefined;
        if (!node) return reply(404, { error: { code: "PEER_UNREACHABLE", message: `no host here supervises enclave ${String(enclave)}` } });
        const api = node as unknown as Record<Method, (p: unknown) => Promise<unknown>>;
        const result = method === "status" ? await (node as VaultSlotApi).status() : await api[method](params);
        reply(200, { result: result ?? null });
      })
      .catch((e: unknown) => reply(200, { error: errorOf(e) }));
  });
  return listenOnLoopback(server, "127.0.0.1", port, (cause) => new VaultHttpError("VAULT_HTTP_LISTEN", `the vault gateway could not listen on 127.0.0.1:${port}: ${cause.message}`, { cause }));
}
