import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { MultipartError, multipartBody, parseMultipart } from "../../src/storage/multipart.ts";

function joined(chunks: Uint8Array[]): Buffer {
  return Buffer.concat(chunks);
}

test("a body built for add parses back into the same files, whatever bytes they hold", () => {
  const files = [
    { name: "0", bytes: randomBytes(1000) },
    { name: "", bytes: new Uint8Array() },
    { name: "a name/with spaces & \"quotes\"", bytes: Buffer.from("\r\n--not the boundary\r\n\r\n--") },
    { name: "3", bytes: randomBytes(70_000) },
  ];
  const body = multipartBody(files);
  const bytes = joined(body.chunks);
  assert.equal(bytes.byteLength, body.length);
  const parts = parseMultipart(bytes, body.contentType);
  assert.deepEqual(
    parts.map((part) => [part.field, part.filename === undefined ? undefined : decodeURIComponent(part.filename), part.contentType]),
    files.map((file, i) => [i === 0 ? "file" : `file-${i}`, file.name, "application/octet-stream"]),
  );
  parts.forEach((part, i) => assert.deepEqual(new Uint8Array(part.bytes), new Uint8Array(files[i]?.bytes ?? []), `part ${i}`));
  assert.notEqual(multipartBody(files).contentType, body.contentType, "a fresh boundary per body");
});

test("a body encoded by FormData parses, text parts without a filename included", async () => {
  const form = new FormData();
  const blob = randomBytes(300);
  form.append("file", new Blob([blob], { type: "application/x-directory" }), "dir");
  form.append("note", "plain text");
  const request = new Request("http://localhost/", { method: "POST", body: form });
  const parts = parseMultipart(Buffer.from(await request.arrayBuffer()), request.headers.get("content-type") ?? "");
  assert.equal(parts.length, 2);
  assert.deepEqual([parts[0]?.field, parts[0]?.filename, parts[0]?.contentType], ["file", "dir", "application/x-directory"]);
  assert.deepEqual(new Uint8Array(parts[0]?.bytes ?? []), new Uint8Array(blob));
  assert.deepEqual([parts[1]?.field, parts[1]?.filename, Buffer.from(parts[1]?.bytes ?? []).toString()], ["note", undefined, "plain text"]);
});

test("malformed bodies are refused with MultipartError", () => {
  const good = multipartBody([{ name: "x", bytes: Buffer.from("hello") }]);
  const body = joined(good.chunks);
  const boundary = good.contentType.split("boundary=")[1] ?? "";
  assert.equal(parseMultipart(body, `multipart/form-data; boundary="${boundary}"`).length, 1, "a quoted boundary");
  const refused = (text: Buffer, contentType = good.contentType): void => {
    assert.throws(() => parseMultipart(text, contentType), MultipartError);
  };
  refused(body, "multipart/form-data");
  refused(Buffer.from("no boundary anywhere"));
  refused(body.subarray(0, body.byteLength - 20));
  refused(body.subarray(0, 30));
  refused(Buffer.from(`--${boundary}\r\nContent-Type: text/plain\r\n\r\nno name\r\n--${boundary}--\r\n`));
  refused(Buffer.from(`--${boundary}\r\nnot a header\r\n\r\nbody\r\n--${boundary}--\r\n`));
});
