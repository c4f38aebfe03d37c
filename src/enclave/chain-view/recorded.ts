/**
 * A chain endpoint made of answers recorded elsewhere: the host runs the same
 * reads against its own endpoint through `recordingEndpoint`, hands the
 * answers to the enclave with the job, and the enclave's chain view reads
 * them back through `replayEndpoint`. Every answer is still verified (header
 * hashes, parent links, account and storage proofs); what the replay cannot
 * give is a second opinion on the checkpoint header: that is the single-
 * endpoint anchor of quorum.ts (docs/threat-model.md), until the enclave
 * names endpoints of its own.
 */
import { z } from "zod";
import { ChainViewError } from "./errors.ts";
import type { ChainEndpoint } from "./rpc.ts";

export const recordedAnswerSchema = z.object({ method: z.string().min(1).max(64), params: z.array(z.unknown()), result: z.unknown() }).strict();
export type RecordedAnswer = z.infer<typeof recordedAnswerSchema>;

const keyOf = (method: string, params: readonly unknown[]) => `${method} ${JSON.stringify(params)}`;

/** `endpoint`, with every answer appended to `answers`. */
export function recordingEndpoint(endpoint: ChainEndpoint, answers: RecordedAnswer[]): ChainEndpoint {
  return {
    name: endpoint.name,
    rpc: {
      async request(args) {
        const params = Array.isArray(args.params) ? [...(args.params as unknown[])] : [];
        const result = await endpoint.rpc.request(args);
        answers.push({ method: args.method, params, result });
        return result;
      },
    },
  };
}

/** An endpoint that answers only what was recorded; anything else fails with RPC_FAILED. */
export function replayEndpoint(name: string, answers: readonly RecordedAnswer[]): ChainEndpoint {
  const byKey = new Map<string, unknown>();
  for (const a of answers) byKey.set(keyOf(a.method, a.params), a.result);
  return {
    name,
    rpc: {
      request(args) {
        const params = Array.isArray(args.params) ? (args.params as unknown[]) : [];
        const key = keyOf(args.method, params);
        if (!byKey.has(key)) {
          return Promise.reject(new ChainViewError("RPC_FAILED", `the host recorded no answer to ${args.method}; it must send the answers of the same reads the enclave makes`, { details: { method: args.method } }));
        }
        return Promise.resolve(byKey.get(key));
      },
    },
  };
}
