/**
 * Source evaluated in every program isolate before the program. It does two things:
 *
 * 1. It shapes the program's world: UTF-8 only TextEncoder and TextDecoder,
 *    implemented in the isolate so that no host function is reachable; no
 *    `WebAssembly` and no `SharedArrayBuffer`, and an `ArrayBuffer` that refuses
 *    resizable buffers. V8 allocates WebAssembly memories and tables and
 *    resizable buffers outside the allocator isolated-vm counts against the
 *    memory limit, so a program holding any of them could use gigabytes under a
 *    16 MB limit. WebAssembly programs have their own executor (wasm.ts), which
 *    bounds their memory and tables.
 *
 * 2. Its completion value is `run`, the function that calls the program and
 *    takes its output. It is reachable from the host only (nothing of it is
 *    left on the global object), and it captures every intrinsic it uses before
 *    the program's module is evaluated, so the program cannot replace them:
 *    once the program has returned (or its promise has settled), only this
 *    code runs. It reads the output's size with V8's own getters, refuses
 *    anything but bytes or a string, refuses output over the limit before it
 *    copies any of it, and copies the bytes into a fresh array the program has
 *    never seen. A thrown value's message is read only from a real Error's own
 *    data property (no getter, toString or Proxy trap of the program runs) and
 *    cut to the task's budget before it leaves the isolate.
 *
 * `run(main, input, maxOutputBytes, maxTextChars)` returns `read`, which returns
 * a record with a null prototype (so that copying it out runs no program code):
 *   { kind: "bytes", bytes } | { kind: "tooLarge", size } | { kind: "badType", what }
 *   | { kind: "threw", name, text, length } | { kind: "pending" }
 * The host calls `read` after `run`'s task, whose end runs every queued
 * microtask: the isolate has no timers or I/O, so a promise still pending then
 * can never settle.
 */
export const SANDBOX_PRELUDE = String.raw`
(() => {
  "use strict";
  const { apply, construct } = Reflect;
  const { getOwnPropertyDescriptor, getPrototypeOf, defineProperty, hasOwn } = Object;
  const uncurry = (fn) => (self, ...args) => apply(fn, self, args);
  const getter = (proto, name) => uncurry(getOwnPropertyDescriptor(proto, name).get);
  const OriginalArrayBuffer = ArrayBuffer;
  const U8 = Uint8Array;
  const TypedArrayPrototype = getPrototypeOf(U8.prototype);
  const isView = ArrayBuffer.isView;
  const isError = Error.isError;
  const typedArrayTag = getter(TypedArrayPrototype, Symbol.toStringTag);
  const typedArrayBuffer = getter(TypedArrayPrototype, "buffer");
  const typedArrayOffset = getter(TypedArrayPrototype, "byteOffset");
  const typedArrayLength = getter(TypedArrayPrototype, "byteLength");
  const dataViewBuffer = getter(DataView.prototype, "buffer");
  const dataViewOffset = getter(DataView.prototype, "byteOffset");
  const dataViewLength = getter(DataView.prototype, "byteLength");
  const arrayBufferLength = getter(ArrayBuffer.prototype, "byteLength");
  const typedArraySet = uncurry(TypedArrayPrototype.set);
  const promiseThen = uncurry(Promise.prototype.then);
  const charCodeAt = uncurry(String.prototype.charCodeAt);
  const stringSlice = uncurry(String.prototype.slice);
  const toString = String;
  const errorTypes = [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError];
  const errorPrototypes = errorTypes.map((E) => E.prototype);
  const errorNames = errorTypes.map((E) => E.name);

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

  /** The only ArrayBuffer constructor the program can reach: the original, minus resizable buffers. */
  const ArrayBufferWithoutResize = function ArrayBuffer(length, options) {
    if (new.target === undefined) throw new TypeError("Constructor ArrayBuffer requires 'new'");
    if (options !== undefined && options !== null && options.maxByteLength !== undefined) {
      throw new TypeError("resizable ArrayBuffers (maxByteLength) are not available in the sandbox: their memory escapes the task's memory limit");
    }
    return construct(OriginalArrayBuffer, [length], new.target);
  };
  defineProperty(ArrayBufferWithoutResize, "prototype", { value: OriginalArrayBuffer.prototype });
  defineProperty(ArrayBufferWithoutResize, "isView", { value: isView, writable: true, configurable: true });
  defineProperty(ArrayBufferWithoutResize, Symbol.species, getOwnPropertyDescriptor(OriginalArrayBuffer, Symbol.species));
  defineProperty(OriginalArrayBuffer.prototype, "constructor", { value: ArrayBufferWithoutResize, writable: true, configurable: true });
  defineProperty(globalThis, "ArrayBuffer", { value: ArrayBufferWithoutResize, writable: true, configurable: true });
  delete OriginalArrayBuffer.prototype.resize;
  delete globalThis.WebAssembly;
  delete globalThis.SharedArrayBuffer;
  defineProperty(globalThis, "TextEncoder", { value: TextEncoder, writable: true, configurable: true });
  defineProperty(globalThis, "TextDecoder", { value: TextDecoder, writable: true, configurable: true });

  function copyBytes(buffer, offset, length, maxOutputBytes) {
    if (length > maxOutputBytes) return { __proto__: null, kind: "tooLarge", size: length };
    const bytes = new U8(length);
    // A view of a detached buffer has length 0, and a detached buffer cannot be viewed.
    if (length > 0) typedArraySet(bytes, new U8(buffer, offset, length));
    return { __proto__: null, kind: "bytes", bytes };
  }

  /** UTF-8 of a string, lone surrogates as U+FFFD; its size is counted before anything is allocated. */
  function encodeString(s, maxOutputBytes) {
    if (s.length > maxOutputBytes) return { __proto__: null, kind: "tooLarge", size: s.length };
    let size = 0;
    for (let i = 0; i < s.length; i++) {
      const c = charCodeAt(s, i);
      if (c < 0x80) size += 1;
      else if (c < 0x800) size += 2;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (charCodeAt(s, i + 1) & 0xfc00) === 0xdc00) { size += 4; i++; }
      else size += 3;
    }
    if (size > maxOutputBytes) return { __proto__: null, kind: "tooLarge", size };
    const bytes = new U8(size);
    let at = 0;
    for (let i = 0; i < s.length; i++) {
      let c = charCodeAt(s, i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (charCodeAt(s, i + 1) & 0xfc00) === 0xdc00) {
        c = 0x10000 + ((c - 0xd800) << 10) + (charCodeAt(s, ++i) - 0xdc00);
      } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      if (c < 0x80) bytes[at++] = c;
      else if (c < 0x800) { bytes[at++] = 0xc0 | (c >> 6); bytes[at++] = 0x80 | (c & 63); }
      else if (c < 0x10000) { bytes[at++] = 0xe0 | (c >> 12); bytes[at++] = 0x80 | ((c >> 6) & 63); bytes[at++] = 0x80 | (c & 63); }
      else { bytes[at++] = 0xf0 | (c >> 18); bytes[at++] = 0x80 | ((c >> 12) & 63); bytes[at++] = 0x80 | ((c >> 6) & 63); bytes[at++] = 0x80 | (c & 63); }
    }
    return { __proto__: null, kind: "bytes", bytes };
  }

  /** The output record of a value, or undefined when it is an object that is neither bytes nor a string. */
  function take(value, maxOutputBytes) {
    if (typeof value === "string") return encodeString(value, maxOutputBytes);
    if (value === null) return { __proto__: null, kind: "badType", what: "null" };
    if (typeof value !== "object") return { __proto__: null, kind: "badType", what: typeof value };
    if (isView(value)) {
      return typedArrayTag(value) !== undefined
        ? copyBytes(typedArrayBuffer(value), typedArrayOffset(value), typedArrayLength(value), maxOutputBytes)
        : copyBytes(dataViewBuffer(value), dataViewOffset(value), dataViewLength(value), maxOutputBytes);
    }
    try {
      return copyBytes(value, 0, arrayBufferLength(value), maxOutputBytes);
    } catch {
      return undefined;
    }
  }

  function cut(text, maxTextChars) {
    if (text.length <= maxTextChars) return text;
    const end = maxTextChars > 0 && (charCodeAt(text, maxTextChars - 1) & 0xfc00) === 0xd800 ? maxTextChars - 1 : maxTextChars;
    return stringSlice(text, 0, end);
  }

  /** What a thrown value says, read without running any of the program's code. */
  function thrown(e, maxTextChars) {
    let name = typeof e, text = "";
    if (typeof e === "string") { name = "string"; text = e; }
    else if (e === null || (typeof e !== "object" && typeof e !== "function")) text = toString(e);
    else if (isError(e)) {
      const proto = getPrototypeOf(e);
      name = "Error";
      for (let i = 0; i < errorPrototypes.length; i++) if (errorPrototypes[i] === proto) name = errorNames[i];
      const message = getOwnPropertyDescriptor(e, "message");
      text = message !== undefined && hasOwn(message, "value") && typeof message.value === "string" ? message.value : "";
    } else name = "object that is not an Error";
    return { __proto__: null, kind: "threw", name, text: cut(text, maxTextChars), length: text.length };
  }

  return function run(main, input, maxOutputBytes, maxTextChars) {
    let state;
    const read = () => state ?? ({ __proto__: null, kind: "pending" });
    const settle = (r) => { state ??= r; };
    if (typeof main !== "function") {
      settle(({ __proto__: null, kind: "badType", what: "default export " + (main === null ? "null" : typeof main) }));
      return read;
    }
    let out;
    try {
      out = main(input);
    } catch (e) {
      settle(thrown(e, maxTextChars));
      return read;
    }
    const now = take(out, maxOutputBytes);
    if (now !== undefined) {
      settle(now);
      return read;
    }
    try {
      // Throws, before looking anything up, unless out is a real promise.
      promiseThen(out, (value) => settle(take(value, maxOutputBytes) ?? ({ __proto__: null, kind: "badType", what: "object" })), (e) => settle(thrown(e, maxTextChars)));
    } catch {
      settle(({ __proto__: null, kind: "badType", what: "object" }));
    }
    return read;
  };
})();
`;
