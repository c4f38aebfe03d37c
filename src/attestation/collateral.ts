/**
 * DCAP collateral, offline from a JSON file or online from a PCCS / Intel PCS
 * (API v4), cached on disk until the earliest nextUpdate of its pieces.
 *
 * Nothing fetched here is trusted: verifyDcapQuote checks every signature,
 * chain and validity window. The cache only saves round trips.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AttestationError } from "./dcap/errors.ts";
import { hex } from "./dcap/bytes.ts";
import { parsePemChain } from "./dcap/cert.ts";
import { parseCrl } from "./dcap/crl.ts";
import { parsePckExtensions } from "./dcap/pck-extensions.ts";
import { embeddedPckChain, parseQuote } from "./dcap/quote.ts";
import { pckCaOf, toUnixSeconds } from "./dcap/verify-quote.ts";
import type { DcapCollateral } from "./types.ts";

const REQUIRED_FIELDS = [
  "tcb_info", "tcb_info_signature", "tcb_info_issuer_chain",
  "qe_identity", "qe_identity_signature", "qe_identity_issuer_chain",
  "pck_crl", "pck_crl_issuer_chain", "root_ca_crl",
] as const;

/** Checks the JSON shape (all fields are strings); the contents are checked by the verifier. */
export function parseCollateralJson(json: unknown, what = "collateral"): DcapCollateral {
  if (!json || typeof json !== "object" || Array.isArray(json)) throw new AttestationError("COLLATERAL_MALFORMED", `${what} must be a JSON object`);
  const o = json as Record<string, unknown>;
  for (const f of REQUIRED_FIELDS) {
    if (typeof o[f] !== "string") throw new AttestationError("COLLATERAL_MALFORMED", `${what}.${f} must be a string`);
  }
  if (o.pck_certificate_chain !== undefined && typeof o.pck_certificate_chain !== "string") {
    throw new AttestationError("COLLATERAL_MALFORMED", `${what}.pck_certificate_chain must be a PEM string`);
  }
  const out = Object.fromEntries(REQUIRED_FIELDS.map((f) => [f, o[f]])) as unknown as DcapCollateral;
  if (typeof o.pck_certificate_chain === "string") out.pck_certificate_chain = o.pck_certificate_chain;
  return out;
}

export async function loadCollateralFile(path: string): Promise<DcapCollateral> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new AttestationError("COLLATERAL_MISSING", `cannot read collateral file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AttestationError("COLLATERAL_MALFORMED", `collateral file ${path} is not JSON: ${(e as Error).message}`);
  }
  return parseCollateralJson(json, path);
}

export interface FetchCollateralOptions {
  /** Base URL of a PCCS or of Intel PCS, e.g. "https://pccs.example:8081" (the "/sgx/certification/v4/..." paths are appended). */
  pccsUrl: string;
  /** Where fetched collateral is cached; omit to disable the cache. */
  cacheDir?: string;
  /** URL of the Intel SGX Root CA CRL; defaults to the PCCS's `/sgx/certification/v4/rootcacrl`. */
  rootCaCrlUrl?: string;
  fetch?: typeof fetch;
  /** Clock for cache expiry, unix seconds or Date. */
  now?: Date | number;
  /** Per-request timeout in milliseconds (default 15 000). */
  timeoutMs?: number;
}

interface CacheEntry {
  nextUpdate: number;
  collateral: DcapCollateral;
}

function fetchError(url: string, detail: string): AttestationError {
  return new AttestationError("COLLATERAL_FETCH_FAILED", `fetching ${url} failed: ${detail}`);
}

async function get(url: string, options: FetchCollateralOptions): Promise<Response> {
  const doFetch = options.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 15_000) });
  } catch (e) {
    throw fetchError(url, (e as Error).message);
  }
  if (!res.ok) throw fetchError(url, `HTTP ${res.status} ${res.statusText}`);
  return res;
}

function issuerChain(res: Response, header: string, url: string): string {
  const v = res.headers.get(header);
  if (!v) throw fetchError(url, `response has no ${header} header`);
  try {
    return decodeURIComponent(v);
  } catch {
    throw fetchError(url, `${header} is not URL-encoded PEM`);
  }
}

/** Cuts the exact signed text of `field` out of a PCS response body, without re-serializing it. */
export function signedSubstring(body: string, field: "tcbInfo" | "enclaveIdentity", url: string): { text: string; signature: string } {
  let parsed: { signature?: unknown };
  try {
    parsed = JSON.parse(body);
  } catch {
    throw fetchError(url, "body is not JSON");
  }
  const key = `"${field}":`;
  const start = body.indexOf(key);
  if (start < 0 || typeof parsed.signature !== "string") throw fetchError(url, `body has no ${field} and signature`);
  let i = start + key.length;
  while (body[i] === " ") i++;
  if (body[i] !== "{") throw fetchError(url, `${field} is not an object`);
  let depth = 0;
  let inString = false;
  for (let j = i; j < body.length; j++) {
    const c = body[j];
    if (inString) {
      if (c === "\\") j++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return { text: body.slice(i, j + 1), signature: parsed.signature };
  }
  throw fetchError(url, `${field} is not terminated`);
}

async function crlHex(res: Response): Promise<string> {
  const bytes = new Uint8Array(await res.arrayBuffer());
  // PCCS serves CRLs either as DER or as hex text.
  const text = Buffer.from(bytes).toString("latin1").trim();
  return /^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0 ? text.toLowerCase() : hex(bytes);
}

function cachePath(dir: string, key: string): string {
  return join(dir, `dcap-collateral-${createHash("sha256").update(key).digest("hex").slice(0, 32)}.json`);
}

async function readCache(path: string, now: number): Promise<DcapCollateral | undefined> {
  try {
    const entry = JSON.parse(await readFile(path, "utf8")) as CacheEntry;
    if (typeof entry.nextUpdate !== "number" || now >= entry.nextUpdate) return undefined;
    return parseCollateralJson(entry.collateral);
  } catch {
    return undefined;
  }
}

async function writeCache(dir: string, path: string, entry: CacheEntry): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(entry));
  await rename(tmp, path);
}

function nextUpdateOf(c: DcapCollateral): number {
  const doc = (text: string) => Math.floor(Date.parse((JSON.parse(text) as { nextUpdate: string }).nextUpdate) / 1000);
  const crl = (h: string, what: string) => parseCrl(new Uint8Array(Buffer.from(h, "hex")), what).nextUpdate ?? 0;
  const all = [doc(c.tcb_info), doc(c.qe_identity), crl(c.pck_crl, "PCK CRL"), crl(c.root_ca_crl, "root CA CRL")];
  return all.some((n) => !Number.isFinite(n)) ? 0 : Math.min(...all);
}

/**
 * Fetches the collateral a quote needs from a PCCS / Intel PCS v4: TCB info
 * for its FMSPC, QE identity, the CRL of the CA that issued its PCK
 * certificate (Processor or Platform), and the root CA CRL.
 */
export async function fetchCollateral(quote: Uint8Array, options: FetchCollateralOptions): Promise<DcapCollateral> {
  const q = parseQuote(quote);
  const pem = embeddedPckChain(q);
  if (!pem) throw new AttestationError("QUOTE_UNSUPPORTED", "the quote does not embed its PCK certificate chain (certification data type 5), so its FMSPC is unknown");
  const pck = parsePemChain(pem, "PCK certificate chain")[0]!;
  const fmspc = hex(parsePckExtensions(pck).fmspc).toUpperCase();
  const ca = pckCaOf(pck);
  if (!ca) throw new AttestationError("CERT_CHAIN_INVALID", `PCK certificate issuer "${pck.issuerCN}" is neither the Processor nor the Platform CA`);
  const tee = q.body.kind === "td" ? "tdx" : "sgx";
  const base = options.pccsUrl.replace(/\/+$/, "");
  const now = toUnixSeconds(options.now);
  const key = `${base}|${tee}|${fmspc}|${ca}`;
  const path = options.cacheDir ? cachePath(options.cacheDir, key) : undefined;
  if (path) {
    const cached = await readCache(path, now);
    if (cached) return cached;
  }

  const tcbUrl = `${base}/${tee}/certification/v4/tcb?fmspc=${fmspc}`;
  const qeUrl = `${base}/${tee}/certification/v4/qe/identity`;
  const crlUrl = `${base}/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`;
  const rootUrl = options.rootCaCrlUrl ?? `${base}/sgx/certification/v4/rootcacrl`;
  const [tcbRes, qeRes, crlRes, rootRes] = await Promise.all([tcbUrl, qeUrl, crlUrl, rootUrl].map((u) => get(u, options)));
  const tcb = signedSubstring(await tcbRes!.text(), "tcbInfo", tcbUrl);
  const qe = signedSubstring(await qeRes!.text(), "enclaveIdentity", qeUrl);
  const collateral: DcapCollateral = {
    tcb_info: tcb.text,
    tcb_info_signature: tcb.signature,
    tcb_info_issuer_chain: issuerChain(tcbRes!, "TCB-Info-Issuer-Chain", tcbUrl),
    qe_identity: qe.text,
    qe_identity_signature: qe.signature,
    qe_identity_issuer_chain: issuerChain(qeRes!, "SGX-Enclave-Identity-Issuer-Chain", qeUrl),
    pck_crl: await crlHex(crlRes!),
    pck_crl_issuer_chain: issuerChain(crlRes!, "SGX-PCK-CRL-Issuer-Chain", crlUrl),
    root_ca_crl: await crlHex(rootRes!),
  };
  if (path && options.cacheDir) {
    let nextUpdate = 0;
    try {
      nextUpdate = nextUpdateOf(collateral);
    } catch {
      nextUpdate = 0;
    }
    if (nextUpdate > now) await writeCache(options.cacheDir, path, { nextUpdate, collateral });
  }
  return collateral;
}
