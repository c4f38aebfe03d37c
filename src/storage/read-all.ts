import { blobTooLarge } from "./blob-store.ts";

/** Collects a blob's chunks into one array, refusing more than `maxBytes`. */
export async function readAll(source: AsyncIterable<Uint8Array>, cid: string, maxBytes?: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.byteLength;
    if (maxBytes !== undefined && total > maxBytes) throw blobTooLarge(cid, maxBytes);
    chunks.push(chunk);
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
