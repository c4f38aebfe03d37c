/**
 * Bounded fuzzing of the DCAP verifier with a fixed seed: bit flips,
 * truncation, extension and length-field rewrites of quotes and collateral.
 * Only AttestationError may come out, never a hang, and never success when
 * signed bytes were altered.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { verifyDcapQuoteSync, AttestationError } from "../../src/attestation/verify.ts";
import { parseQuote, type ParsedQuote } from "../../src/attestation/dcap/quote.ts";
import { caseNamed, intelRoot, vectorBytes, vectorCollateral } from "./dcap-helpers.ts";
import type { Claims, DcapCollateral } from "../../src/attestation/types.ts";

const ITERATIONS_PER_CASE = 300;

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Offsets of length fields in a v3 SGX / v4 TDX quote, found from the parse. */
function lengthFields(q: ParsedQuote, quote: Uint8Array): { offset: number; size: 2 | 4 }[] {
  const sigLenAt = q.signedBytes.length;
  // Parsed fields are views into the quote's buffer, so their offsets locate the length prefixes.
  const authLenAt = q.qeAuthData.byteOffset - quote.byteOffset - 2;
  const certLenAt = q.certificationData.byteOffset - quote.byteOffset - 4;
  const fields: { offset: number; size: 2 | 4 }[] = [
    { offset: 0, size: 2 },
    { offset: sigLenAt, size: 4 },
    { offset: authLenAt, size: 2 },
    { offset: certLenAt, size: 4 },
  ];
  if (q.header.version !== 3) fields.push({ offset: sigLenAt + 4 + 128 + 2, size: 4 });
  return fields;
}

function mutateQuote(quote: Uint8Array, q: ParsedQuote, rnd: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(rnd() * n);
  const out = Uint8Array.from(quote);
  switch (pick(5)) {
    case 0: {
      const flips = 1 + pick(4);
      for (let i = 0; i < flips; i++) out[pick(out.length)]! ^= 1 << pick(8);
      return out;
    }
    case 1: {
      // Flip inside the signed header+body specifically.
      out[pick(q.signedBytes.length)]! ^= 1 << pick(8);
      return out;
    }
    case 2:
      return out.subarray(0, pick(out.length));
    case 3: {
      const extra = new Uint8Array(1 + pick(64)).map(() => pick(256));
      const grown = new Uint8Array(out.length + extra.length);
      grown.set(out);
      grown.set(extra, out.length);
      return grown;
    }
    default: {
      const fields = lengthFields(q, quote);
      const f = fields[pick(fields.length)]!;
      const values = [0, 1, 0xffff, 0xffffffff, pick(0x10000), 0x7fffffff];
      const v = values[pick(values.length)]!;
      const view = new DataView(out.buffer);
      if (f.size === 2) view.setUint16(f.offset, v & 0xffff, true);
      else view.setUint32(f.offset, v >>> 0, true);
      return out;
    }
  }
}

const HEX_FIELDS = ["tcb_info_signature", "qe_identity_signature", "pck_crl", "root_ca_crl"] as const;
const TEXT_FIELDS = ["tcb_info", "qe_identity", "tcb_info_issuer_chain", "qe_identity_issuer_chain", "pck_crl_issuer_chain"] as const;

function mutateCollateral(c: DcapCollateral, rnd: () => number): DcapCollateral {
  const pick = (n: number) => Math.floor(rnd() * n);
  const out = { ...c };
  const fields = [...HEX_FIELDS, ...TEXT_FIELDS];
  const field = fields[pick(fields.length)]!;
  const s = out[field] as string;
  switch (pick(4)) {
    case 0: {
      const i = pick(s.length);
      const ch = String.fromCharCode(s.charCodeAt(i) ^ (1 << pick(7)));
      out[field] = s.slice(0, i) + ch + s.slice(i + 1);
      break;
    }
    case 1:
      out[field] = s.slice(0, pick(s.length));
      break;
    case 2:
      out[field] = s + (HEX_FIELDS.includes(field as never) ? "00" : " ");
      break;
    default: {
      // A DER length byte or a JSON number nudged.
      if ((HEX_FIELDS as readonly string[]).includes(field)) {
        const at = 2 * (1 + pick(4));
        out[field] = s.slice(0, at) + "ff" + s.slice(at + 2);
      } else {
        out[field] = s.replace(/\d+/, (d) => String(Number(d) + 1));
      }
    }
  }
  return out;
}

function runOne(quote: Uint8Array, collateral: DcapCollateral, now: number): Claims | AttestationError {
  try {
    return verifyDcapQuoteSync(quote, collateral, { now, trustedRoots: [intelRoot()] });
  } catch (e) {
    if (e instanceof AttestationError) return e;
    throw new Error(`verifier crashed with a non-AttestationError: ${(e as Error)?.stack ?? String(e)}`);
  }
}

/** The bytes a genuine result depends on: every signed or bound part of the quote. */
function signedParts(q: ParsedQuote): string[] {
  return [q.signedBytes, q.signature, q.attestationKey, q.qeReportBytes, q.qeReportSignature, q.qeAuthData].map((b) => Buffer.from(b).toString("hex"));
}

for (const [name, seed] of [["sgx_v3_ok", 0x5eed1], ["tdx_v4_ok", 0x5eed2]] as const) {
  test(`fuzz ${name}: ${ITERATIONS_PER_CASE} quote and ${ITERATIONS_PER_CASE} collateral mutations`, () => {
    const c = caseNamed(name);
    const quote = vectorBytes(c.quote_file);
    const collateral = vectorCollateral(c.collateral_file);
    const reference = runOne(quote, collateral, c.now_secs);
    assert.ok(!(reference instanceof AttestationError), "the unmutated case verifies");
    const parsed = parseQuote(quote);
    const original = signedParts(parsed);
    const rnd = prng(seed);
    let refused = 0;
    const started = Date.now();

    for (let i = 0; i < ITERATIONS_PER_CASE; i++) {
      const mutated = mutateQuote(quote, parsed, rnd);
      const result = runOne(mutated, collateral, c.now_secs);
      if (result instanceof AttestationError) {
        refused++;
        continue;
      }
      // Accepted: then nothing signed may have changed (only unsigned padding or PEM whitespace).
      assert.deepEqual(signedParts(parseQuote(mutated)), original, `mutation ${i} altered signed bytes but verified`);
      assert.deepEqual(result, reference);
    }
    for (let i = 0; i < ITERATIONS_PER_CASE; i++) {
      const mutated = mutateCollateral(collateral, rnd);
      const result = runOne(quote, mutated, c.now_secs);
      if (result instanceof AttestationError) {
        refused++;
        continue;
      }
      assert.equal(mutated.tcb_info, collateral.tcb_info, `collateral mutation ${i} altered tcb_info but verified`);
      assert.equal(mutated.qe_identity, collateral.qe_identity, `collateral mutation ${i} altered qe_identity but verified`);
      assert.deepEqual(result, reference);
    }
    assert.ok(refused > ITERATIONS_PER_CASE, `most mutations are refused (${refused})`);
    assert.ok(Date.now() - started < 20_000, "fuzzing stays bounded in time");
  });
}

test("garbage of every small length is refused as QUOTE_MALFORMED / QUOTE_UNSUPPORTED", () => {
  const rnd = prng(42);
  const collateral = vectorCollateral("sgx_v3_collateral.json");
  for (let len = 0; len < 700; len += 7) {
    const junk = new Uint8Array(len).map(() => Math.floor(rnd() * 256));
    if (len >= 8) junk.set([3, 0, 2, 0, 0, 0, 0, 0]);
    const r = runOne(junk, collateral, 1751624924);
    assert.ok(r instanceof AttestationError && /^QUOTE_/.test(r.code), `length ${len}`);
  }
});
