/**
 * Chain endpoints named by a data owner (sealed with its pipeline or its
 * granted dataset, so the host cannot change them) and the chain view over
 * them: the checkpoint header from a quorum of them, every read proved
 * against it. The enclave process reaches them with node:http and node:https
 * (CA-validated TLS for https), not through the relay with a pin, which would
 * need pins for RPC providers (not built). Not fetch: a proof answer is
 * megabytes, and reading it through fetch's web streams cost a vault enclave
 * about a tenth of its CPU.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { ChainView } from "./chain-view.ts";
import { QuorumHeaderSource } from "./quorum.ts";
import type { ChainEndpoint } from "./rpc.ts";

export interface OwnerChainViewConfig {
  endpoints: readonly string[];
  /** How many endpoints must agree on the checkpoint (a majority). */
  quorum: number;
  /** Blocks below the quorum's head the checkpoint stays. */
  finalityDepth: number;
}

/** The largest answer read from an endpoint: a larger one fails the call, so an endpoint cannot make the enclave buffer without bound. */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** A JSON-RPC endpoint over HTTP(S) POST, on kept-alive connections; answers over `maxAnswerBytes` (default MAX_ANSWER_BYTES) fail. */
export function httpEndpoint(name: string, url: string, options: { maxAnswerBytes?: number } = {}): ChainEndpoint {
  const maxBytes = options.maxAnswerBytes ?? MAX_ANSWER_BYTES;
  const target = new URL(url);
  const tls = target.protocol === "https:";
  const agent = tls ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  const send = tls ? httpsRequest : httpRequest;
  let id = 0;
  return {
    name,
    rpc: {
      request({ method, params }: { method: string; params?: readonly unknown[] | object }) {
        const body = JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params: params ?? [] });
        return new Promise((resolve, reject) => {
          const req = send(target, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
            readAnswer(res, method, maxBytes).then(resolve, (error: unknown) => {
              req.destroy();
              reject(error as Error);
            });
          });
          req.on("error", reject);
          req.end(body);
        });
      },
    },
  };
}

async function readAnswer(res: IncomingMessage, method: string, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new Error(`${method}: the answer is over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  let answer: { result?: unknown; error?: { message?: string } };
  try {
    answer = JSON.parse(Buffer.concat(chunks, size).toString("utf8")) as typeof answer;
  } catch {
    throw new Error(`${method}: the endpoint answered HTTP ${res.statusCode} with no JSON`);
  }
  if (answer.error) throw new Error(`${method}: ${answer.error.message ?? "error"}`);
  return answer.result;
}

/** The chain view over the owner's endpoints: headers from their quorum, reads from the first. */
export function ownerChainView(config: OwnerChainViewConfig, chainId: number): ChainView {
  const endpoints = config.endpoints.map((url, i) => httpEndpoint(`endpoint ${i + 1} (${new URL(url).host})`, url));
  return new ChainView({ headers: new QuorumHeaderSource({ chainId, endpoints, quorum: config.quorum, finalityDepth: config.finalityDepth }), data: endpoints[0]! });
}
