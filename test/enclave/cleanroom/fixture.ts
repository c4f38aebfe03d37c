import { DuckDBInstance } from "@duckdb/node-api";
import type { DuckDBConnection } from "@duckdb/node-api";

/**
 * Two in-memory tables of a retailer and a bank. Per category, the distinct
 * customers are: food 6, books 5 (exactly the threshold), garden 4 (over 12
 * rows, so COUNT(*) alone would pass a naive threshold), toys 1.
 */
export async function cleanRoomDb(): Promise<{ connection: DuckDBConnection; close: () => void }> {
  const instance = await DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  await connection.run("CREATE TABLE purchases (customer_id INTEGER, category VARCHAR, amount INTEGER)");
  await connection.run("CREATE TABLE cards (customer_id INTEGER, tier VARCHAR)");
  const rows: string[] = [];
  for (let c = 1; c <= 6; c++) rows.push(`(${c}, 'food', ${c * 10})`);
  for (let c = 1; c <= 5; c++) rows.push(`(${c + 10}, 'books', 20)`);
  for (let i = 0; i < 12; i++) rows.push(`(${20 + (i % 4)}, 'garden', 5)`);
  rows.push("(99, 'toys', 4242)");
  await connection.run(`INSERT INTO purchases VALUES ${rows.join(", ")}`);
  const cards: string[] = [];
  for (const c of [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 20, 21, 22, 23, 99]) cards.push(`(${c}, '${c % 2 === 0 ? "gold" : "silver"}')`);
  await connection.run(`INSERT INTO cards VALUES ${cards.join(", ")}`);
  return {
    connection,
    close: () => {
      connection.closeSync();
      instance.closeSync();
    },
  };
}
