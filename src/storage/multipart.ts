/**
 * multipart/form-data as the Kubo add command uses it: one file part per
 * blob, each with a filename. Both directions: kubo-http.ts builds the body
 * of an add, kubo-rpc-server.ts parses it. (The server parsed with undici's
 * FormData before; that cost about 0.08 ms of CPU per request of one small
 * blob, more than the rest of the parse and the store together.)
 */
import { randomUUID } from "node:crypto";
import { CloisterError } from "../util/base-error.ts";

export interface FilePart {
  /** The part's filename, URI-encoded on the wire; Kubo names a file's output line by it. */
  name: string;
  bytes: Uint8Array;
}

export interface MultipartBody {
  contentType: string;
  chunks: Uint8Array[];
  length: number;
}

/** A body of one file part per file, fields "file", "file-1", "file-2"… as Kubo's clients name them. */
export function multipartBody(files: readonly FilePart[]): MultipartBody {
  // A random boundary: the blobs are arbitrary bytes and must not contain it.
  const boundary = `cloister-${randomUUID()}`;
  const chunks: Uint8Array[] = [];
  let length = 0;
  const push = (chunk: Uint8Array): void => {
    chunks.push(chunk);
    length += chunk.byteLength;
  };
  files.forEach(({ name, bytes }, i) => {
    push(
      Buffer.from(
        `${i === 0 ? "" : "\r\n"}--${boundary}\r\n` +
          `Content-Disposition: form-data; name="${i === 0 ? "file" : `file-${i}`}"; filename="${encodeURIComponent(name)}"\r\n` +
          "Content-Type: application/octet-stream\r\n\r\n",
      ),
    );
    push(bytes);
  });
  push(Buffer.from(`\r\n--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, chunks, length };
}

export interface ParsedPart {
  /** The form field's name. */
  field: string;
  /** The filename parameter as sent (still URI-encoded); undefined for a part that has none. */
  filename: string | undefined;
  /** The part's Content-Type, lower case; undefined when absent. */
  contentType: string | undefined;
  /** A view into the request body. */
  bytes: Uint8Array;
}

/** Thrown for a body that is not well-formed multipart/form-data. */
export class MultipartError extends CloisterError<"MULTIPART_MALFORMED"> {
  constructor(message: string) {
    super("MULTIPART_MALFORMED", message);
  }
}

const CRLF = Buffer.from("\r\n");
const HEADERS_END = Buffer.from("\r\n\r\n");

/** The parts of a multipart/form-data body, in order. */
export function parseMultipart(body: Buffer, contentType: string): ParsedPart[] {
  const boundary = headerParams(contentType).get("boundary");
  if (boundary === undefined || boundary === "") throw new MultipartError("the Content-Type has no boundary parameter");
  const delimiter = Buffer.from(`--${boundary}`);
  const nextDelimiter = Buffer.from(`\r\n--${boundary}`);
  let at = body.indexOf(delimiter);
  if (at === -1) throw new MultipartError("the body holds no boundary");
  at += delimiter.byteLength;
  const parts: ParsedPart[] = [];
  for (;;) {
    if (body[at] === 0x2d && body[at + 1] === 0x2d) return parts; // "--": the closing delimiter
    const lineEnd = body.indexOf(CRLF, at);
    if (lineEnd === -1) throw new MultipartError("a boundary line does not end");
    const headersEnd = body.indexOf(HEADERS_END, lineEnd);
    const end = headersEnd === -1 ? -1 : body.indexOf(nextDelimiter, headersEnd + HEADERS_END.byteLength);
    if (headersEnd === -1 || end === -1) throw new MultipartError("a part is cut off: the body ends before its closing boundary");
    const headers = parseHeaders(body.toString("latin1", lineEnd + CRLF.byteLength, headersEnd));
    const disposition = headerParams(headers.get("content-disposition") ?? "");
    const field = disposition.get("name");
    if (field === undefined) throw new MultipartError("a part has no Content-Disposition name");
    parts.push({
      field,
      filename: disposition.get("filename"),
      contentType: headers.get("content-type")?.toLowerCase(),
      bytes: body.subarray(headersEnd + HEADERS_END.byteLength, end),
    });
    at = end + nextDelimiter.byteLength;
  }
}

function parseHeaders(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  if (text === "") return headers;
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new MultipartError(`a part has a malformed header line: ${line.slice(0, 100)}`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** The `; key=value` parameters of a header value, keys lower case, quoted values unquoted. */
function headerParams(value: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const [, key = "", quoted, bare] of value.matchAll(/;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g)) {
    params.set(key.toLowerCase(), quoted === undefined ? (bare ?? "").trim() : quoted.replace(/\\(.)/g, "$1"));
  }
  return params;
}
