/**
 * The https (JSON) source and destination against a local HTTPS server with a
 * self-signed certificate (pinned), the program transform in the task
 * sandbox, and file destinations' modes and run marker.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { certificateSha256 } from "../../../src/enclave/net/connect.ts";
import { collect } from "../../../src/enclave/connectors/index.ts";
import { openHttpsSource, writeHttpsRows } from "../../../src/enclave/pipeline/https.ts";
import { writeFileRows } from "../../../src/enclave/pipeline/file-destination.ts";
import { copyTransform, programTransform, sqlTransform } from "../../../src/enclave/pipeline/transform.ts";
import type { Column, Row } from "../../../src/enclave/connectors/types.ts";
import { selfSignedCertificate } from "../net/postgres-instance.ts";

const dir = mkdtempSync(join(tmpdir(), "cloister-pl-https-"));
const { certPem, keyPem } = selfSignedCertificate(dir, "localhost");
const pin = certificateSha256(certPem);
const posted: { headers: Record<string, unknown>; body: unknown }[] = [];
const seenQueries: string[] = [];
const rows = [
  { id: 1, name: "a", score: 1.5 },
  { id: 2, name: "b", score: 2 },
  { id: 3, name: "c", score: null },
];
let server: Server;
let base = "";
test.before(async () => {
  server = createServer({ cert: certPem, key: keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST") {
        posted.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) });
        res.writeHead(204).end();
        return;
      }
      seenQueries.push(req.url ?? "");
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(rows));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
test.after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function* once(batch: readonly Row[]): AsyncGenerator<readonly Row[]> {
  yield batch;
}

test("https source: pinned self-signed certificate, typed columns, incremental after a cursor", async () => {
  const all = await collect(await openHttpsSource({ type: "https", url: `${base}/rows`, pin, cursor: "id" }, {}));
  assert.deepEqual(all.columns, [{ name: "id", type: "integer" }, { name: "name", type: "text" }, { name: "score", type: "float" }]);
  assert.equal(all.rowCount, 3);
  assert.equal(all.cursor, "3");
  const later = await collect(await openHttpsSource({ type: "https", url: `${base}/rows`, pin, cursor: "id" }, { after: "1" }));
  assert.deepEqual(later.rows.map((r) => r[0]), [2n, 3n], "rows past the cursor only, even from a server that ignores ?after");
  assert.equal(seenQueries.at(-1), "/rows?after=1");
});

test("https source: another certificate than the pin, or no pin for a self-signed server, is refused", async () => {
  await assert.rejects(openHttpsSource({ type: "https", url: `${base}/rows`, pin: "00".repeat(32) }, {}), /pinned/);
  await assert.rejects(openHttpsSource({ type: "https", url: `${base}/rows` }, {}), /could not reach/);
  await assert.rejects(openHttpsSource({ type: "https", url: "http://127.0.0.1/x" }, {}), /https:\/\//);
});

test("https destination: POSTs { runId, rows } with the run id as Idempotency-Key", async () => {
  const columns: Column[] = [{ name: "k", type: "integer" }, { name: "v", type: "text" }];
  let recorded = "";
  const summary = await writeHttpsRows({ type: "https", url: `${base}/in`, mode: "append", pin }, columns, once([[1n, "x"], [2n, "y"]]), { table: "", runId: "0xrun", record: (w) => (recorded = JSON.stringify(w)) }, undefined);
  assert.equal(summary.rowCount, 2);
  assert.equal(posted.at(-1)!.headers["idempotency-key"], "0xrun");
  assert.deepEqual(posted.at(-1)!.body, { runId: "0xrun", rows: [{ k: 1, v: "x" }, { k: 2, v: "y" }] });
  assert.match(recorded, /"rowCount":2/);
});

test("transforms: SQL over `source` in DuckDB, a JS program in the sandbox, copy", async () => {
  const columns: Column[] = [{ name: "id", type: "integer" }, { name: "amount", type: "decimal" }, { name: "who", type: "text" }];
  const input: Row[] = [[1n, "2.50", "a"], [2n, "4.00", "b"], [3n, "1.25", "a"]];
  const sql = await sqlTransform("SELECT who, SUM(amount) AS total, COUNT(*) AS n FROM source GROUP BY who ORDER BY who", columns, once(input));
  const out: Row[] = [];
  for await (const b of sql.batches) out.push(...b);
  assert.deepEqual(sql.columns.map((c) => c.type), ["text", "decimal", "integer"]);
  assert.deepEqual(out.map((r) => [r[0], Number(r[1]), r[2]]), [["a", 3.75, 2n], ["b", 4, 1n]]);
  assert.equal(sql.count(), 2);
  await assert.rejects(sqlTransform("SELECT nope FROM source", columns, once(input)), /transform's SQL failed/);
  await assert.rejects(sqlTransform("SELECT * FROM read_csv('/etc/passwd')", columns, once(input)), /transform's SQL failed/, "no file access from the SQL");

  const program = `export default (input) => JSON.stringify(JSON.parse(new TextDecoder().decode(input)).map((r) => ({ id: r.id, big: Number(r.amount) > 2 })));`;
  const js = await programTransform(program, "flag.js", columns, once(input));
  const jsOut: Row[] = [];
  for await (const b of js.batches) jsOut.push(...b);
  assert.deepEqual(jsOut, [[1n, true], [2n, true], [3n, false]]);
  await assert.rejects(programTransform("export default () => 'not json'", "bad.js", columns, once(input)), /not JSON/);

  const copy = copyTransform(columns, once(input));
  const copied: Row[] = [];
  for await (const b of copy.batches) copied.push(...b);
  assert.deepEqual(copied, input);
});

test("file destination: append, upsert by key and the run marker", async () => {
  const path = join(dir, "out.csv");
  const columns: Column[] = [{ name: "id", type: "integer" }, { name: "v", type: "text" }];
  const marker = (runId: string) => ({ table: "", runId, record: (w: { rowCount: number }) => `written ${w.rowCount}` });
  await writeFileRows({ type: "csv", path, mode: "append" }, columns, once([[1n, "a"], [2n, "b"]]), marker("r1"));
  const again = await writeFileRows({ type: "csv", path, mode: "append" }, columns, once([[1n, "a"], [2n, "b"]]), marker("r1"));
  assert.equal(again.resumed, "written 2", "the same run is not appended twice");
  await writeFileRows({ type: "csv", path, mode: "append" }, columns, once([[3n, "c"]]), marker("r2"));
  assert.deepEqual(readFileSync(path, "utf8").trim().split("\n"), ["id,v", "1,a", "2,b", "3,c"]);
  await writeFileRows({ type: "csv", path, mode: "upsert", key: ["id"] }, columns, once([[2n, "B"], [4n, "d"]]), marker("r3"));
  assert.deepEqual(readFileSync(path, "utf8").trim().split("\n").sort(), ["1,a", "2,B", "3,c", "4,d", "id,v"]);
});
