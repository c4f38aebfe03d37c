/**
 * Source evaluated in every program isolate before the program: the whole
 * program API beyond the JavaScript language itself. UTF-8 only TextEncoder
 * and TextDecoder, implemented in the isolate so that no host function is
 * reachable from the program.
 */
export const SANDBOX_PRELUDE = String.raw`
(() => {
  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") {
      const s = String(input);
      const out = [];
      for (let i = 0; i < s.length; i++) {
        let c = s.charCodeAt(i);
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
          const d = s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
        }
        if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
        if (c < 0x80) out.push(c);
        else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
        else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
        else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      }
      return new Uint8Array(out);
    }
  }
  class TextDecoder {
    get encoding() { return "utf-8"; }
    decode(input) {
      if (input === undefined) return "";
      const b = input instanceof ArrayBuffer ? new Uint8Array(input) : new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
      let s = "";
      for (let i = 0; i < b.length; ) {
        const x = b[i];
        let c = 0xfffd, n = 1;
        if (x < 0x80) c = x;
        else if (x >= 0xc2 && x < 0xe0 && (b[i + 1] & 0xc0) === 0x80) { c = ((x & 31) << 6) | (b[i + 1] & 63); n = 2; }
        else if (x >= 0xe0 && x < 0xf0 && (b[i + 1] & 0xc0) === 0x80 && (b[i + 2] & 0xc0) === 0x80) {
          const v = ((x & 15) << 12) | ((b[i + 1] & 63) << 6) | (b[i + 2] & 63);
          if (v >= 0x800 && (v < 0xd800 || v > 0xdfff)) { c = v; n = 3; }
        } else if (x >= 0xf0 && x < 0xf5 && (b[i + 1] & 0xc0) === 0x80 && (b[i + 2] & 0xc0) === 0x80 && (b[i + 3] & 0xc0) === 0x80) {
          const v = ((x & 7) << 18) | ((b[i + 1] & 63) << 12) | ((b[i + 2] & 63) << 6) | (b[i + 3] & 63);
          if (v >= 0x10000 && v <= 0x10ffff) { c = v; n = 4; }
        }
        s += String.fromCodePoint(c);
        i += n;
      }
      return s;
    }
  }
  Object.defineProperty(globalThis, "TextEncoder", { value: TextEncoder, writable: true, configurable: true });
  Object.defineProperty(globalThis, "TextDecoder", { value: TextDecoder, writable: true, configurable: true });
})();
`;

/** The module that calls the program's default export and normalizes its output. */
export const RUNNER_MODULE = String.raw`
import main from "program";
export async function run(input, maxOutputBytes) {
  if (typeof main !== "function") throw new TypeError("the program's default export must be a function (input: Uint8Array) => Uint8Array | string");
  let out = await main(input);
  if (typeof out === "string") {
    if (out.length > maxOutputBytes) return { tooLarge: out.length };
    out = new TextEncoder().encode(out);
  } else if (out instanceof ArrayBuffer) {
    out = new Uint8Array(out);
  } else if (ArrayBuffer.isView(out)) {
    out = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } else {
    return { badType: out === null ? "null" : typeof out };
  }
  if (out.byteLength > maxOutputBytes) return { tooLarge: out.byteLength };
  return { bytes: out.slice() };
}
`;
