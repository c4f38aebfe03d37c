import { test } from "node:test";
import assert from "node:assert/strict";
import { GrantDocumentError, grantRunId, normalizeTableName, parseGrantDocument, statementShape } from "../../src/protocol/operate.ts";

test("statementShape reads the operation and target table of one UPDATE, DELETE or INSERT", () => {
  assert.deepEqual(statementShape("UPDATE accounts SET a = 1"), { operation: "update", table: "accounts" });
  assert.deepEqual(statementShape("-- fix ticket 42\n/* owner approved */ delete from Public.Accounts where id = 1;"), { operation: "delete", table: "public.accounts" });
  assert.deepEqual(statementShape('INSERT INTO "Mixed"."T" (a) VALUES (1)'), { operation: "insert", table: "Mixed.T" });
  assert.deepEqual(statementShape("update `crm`.`t` set a = 2"), { operation: "update", table: "crm.t" });
  assert.deepEqual(statementShape("UPDATE ONLY accounts SET a = 1"), { operation: "update", table: "accounts" });
});

test("statementShape reads a SELECT's first FROM as its table", () => {
  assert.deepEqual(statementShape("SELECT a, b FROM crm.Customers WHERE id = 1"), { operation: "read", table: "crm.customers" });
  assert.deepEqual(statementShape("select count(*)\nfrom \"T\""), { operation: "read", table: "T" });
});

test("statementShape refuses several statements and anything else", () => {
  for (const s of ["UPDATE t SET a = 1; DROP TABLE t", "SELECT 1", "WITH x AS (SELECT 1) UPDATE t SET a = 1", "DROP TABLE t", "TRUNCATE t"]) {
    assert.throws(() => statementShape(s), (e: unknown) => e instanceof GrantDocumentError && e.code === "GRANT_STATEMENT_UNSUPPORTED", s);
  }
});

test("table names compare with unquoted parts lowercased", () => {
  assert.equal(normalizeTableName("Accounts"), "accounts");
  assert.equal(normalizeTableName('"Accounts"'), "Accounts");
  assert.equal(normalizeTableName("public . orders"), "public.orders");
});

test("a grant's run ids differ per use, grant and contract", () => {
  const b = { chainId: 31337n, grants: "0x1111111111111111111111111111111111111111" as const, grantId: 7n };
  const ids = new Set([grantRunId(b, 0), grantRunId(b, 1), grantRunId({ ...b, grantId: 8n }, 0), grantRunId({ ...b, grants: "0x2222222222222222222222222222222222222222" }, 0)]);
  assert.equal(ids.size, 4);
  assert.equal(grantRunId(b, 0), grantRunId({ ...b }, 0));
});

test("parseGrantDocument names the field that is wrong", () => {
  assert.throws(() => parseGrantDocument({ version: 1, chainId: 1 }, "g.json"), (e: unknown) => e instanceof GrantDocumentError && e.code === "GRANT_DOCUMENT_INVALID" && /g\.json: grants/.test(e.message));
});
