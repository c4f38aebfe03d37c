import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { datasetDigest, type Column } from "../../../src/enclave/connectors/index.ts";

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const str = (s: string) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s, "utf8")]);

test("the digest is SHA-256 of the documented encoding, byte for byte", () => {
  const columns: Column[] = [
    { name: "id", type: "integer" },
    { name: "ok", type: "boolean" },
    { name: "x", type: "float" },
    { name: "name", type: "text" },
    { name: "blob", type: "bytes" },
  ];
  const rows = [
    [-42n, true, 1.5, "zoë", new Uint8Array([1, 2])],
    [null, false, Number.NaN, "", new Uint8Array()],
  ];
  const f64 = (x: number) => {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(x);
    return b;
  };
  const expected = Buffer.concat([
    Buffer.from("cloister-dataset/v1\n"),
    u32(5),
    ...columns.flatMap((c) => [str(c.name), str(c.type)]),
    Buffer.from([0x02]), str("-42"), Buffer.from([0x01, 1]), Buffer.from([0x03]), f64(1.5), Buffer.from([0x04]), str("zoë"), Buffer.from([0x05]), u32(2), Buffer.from([1, 2]),
    Buffer.from([0x00]), Buffer.from([0x01, 0]), Buffer.from([0x03]), Buffer.from("7ff8000000000000", "hex"), Buffer.from([0x04]), str(""), Buffer.from([0x05]), u32(0),
  ]);
  assert.equal(datasetDigest(columns, rows), createHash("sha256").update(expected).digest("hex"));
});

test("the digest changes with row order, a column's type or name, and a moved boundary", () => {
  const text: Column[] = [{ name: "a", type: "text" }, { name: "b", type: "text" }];
  const base = datasetDigest(text, [["x", "y"], ["z", "w"]]);
  assert.notEqual(base, datasetDigest(text, [["z", "w"], ["x", "y"]]));
  assert.notEqual(datasetDigest(text, [["ab", "c"]]), datasetDigest(text, [["a", "bc"]]));
  assert.notEqual(datasetDigest(text, [["1", null]]), datasetDigest(text, [["1", ""]]));
  assert.notEqual(datasetDigest([{ name: "a", type: "integer" }], [[1n]]), datasetDigest([{ name: "a", type: "decimal" }], [["1"]]));
  assert.notEqual(datasetDigest([{ name: "a", type: "text" }], []), datasetDigest([{ name: "b", type: "text" }], []));
});

test("long values cross the internal buffer without changing the digest", () => {
  const columns: Column[] = [{ name: "t", type: "text" }, { name: "b", type: "bytes" }];
  const long = "é".repeat(100_000);
  const bytes = new Uint8Array(70_000).fill(7);
  const rows = Array.from({ length: 50 }, (_, i) => [i % 2 ? long : "short", bytes]);
  const expected = createHash("sha256")
    .update(Buffer.concat([Buffer.from("cloister-dataset/v1\n"), u32(2), str("t"), str("text"), str("b"), str("bytes")]))
  for (const [t] of rows) expected.update(Buffer.concat([Buffer.from([0x04]), str(t as string), Buffer.from([0x05]), u32(bytes.length), bytes]));
  assert.equal(datasetDigest(columns, rows), expected.digest("hex"));
});
