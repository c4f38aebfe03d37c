/**
 * The owner-grant part of the pipeline demo, and `cloister demo grants` on
 * its own: over a DuckDB database file (no server), an operator's
 * manipulation is refused without a grant, allowed once under a grant (the
 * use recorded on chain with its provenance), then refused when the grant is
 * used up; the owner lists what was done. Every check is printed.
 *
 * The dataset is a DuckDB file the demo writes in its data dir: the enclave
 * opens it by path, so on this machine the host can read the file itself: a
 * file dataset shows the protocol, not confidentiality (docs/pipelines.md).
 */
import { mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { listGrantUses } from "../../chain/actions/read-grant-logs.ts";
import { readGrant } from "../../chain/actions/read-grant.ts";
import { startEmbeddedNetwork, type EmbeddedNetwork } from "../../devnet/embedded.ts";
import { EnclaveError } from "../../enclave/errors.ts";
import { runOperateJob } from "../../host/operate-job.ts";
import type { GrantDocument, GrantedDataset } from "../../protocol/operate.ts";
import { statementDigest } from "../../protocol/grants.ts";
import { createGrantDocument, readUseRecord } from "../../sdk/grants.ts";
import { CloisterError } from "../../util/base-error.ts";
import { printJson, stderrReporter, type Reporter } from "../output.ts";
import { grantIdHex } from "../grant-inputs.ts";
import { shortId } from "./task.ts";

export class GrantDemoError extends CloisterError<"GRANT_DEMO_FAILED"> {}

export interface GrantDemoResult {
  /** 0x and 64 hex digits, as the grant commands print it. */
  grantId: string;
  refusedWithoutGrant: string;
  allowed: { runId: string; rowsAffected: number; provenanceCid: string; transactionHash: string; gasUsed: string };
  refusedWhenUsedUp: string;
  uses: number;
  balance: { before: number; after: number };
  checks: string[];
}

const STATEMENT = "UPDATE accounts SET balance = balance + 25 WHERE id = 2";

async function withDuckDb<T>(path: string, fn: (run: (sql: string) => Promise<unknown[][]>) => Promise<T>): Promise<T> {
  const instance = await DuckDBInstance.create(path);
  const connection = await instance.connect();
  try {
    return await fn(async (sql) => (await connection.runAndReadAll(sql)).getRows() as unknown[][]);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

async function refusal(run: Promise<unknown>, expected: string): Promise<EnclaveError> {
  try {
    await run;
  } catch (error) {
    if (error instanceof EnclaveError && error.code === expected) return error;
    throw error;
  }
  throw new GrantDemoError("GRANT_DEMO_FAILED", `the manipulation ran although the enclave should have refused it with ${expected}: the grant checks are broken`);
}

/**
 * The grant steps on `network` (node 0's operator operates; the network's requester account is the owner), over
 * a DuckDB file written under `dir`. Throws GrantDemoError when a check fails.
 */
export async function runGrantDemoSteps(network: EmbeddedNetwork, dir: string, reporter: Reporter): Promise<GrantDemoResult> {
  const grants = network.deployment.grants;
  if (!grants) throw new GrantDemoError("GRANT_DEMO_FAILED", "this network has no Grants contract (its deployment predates it); start the demo with a new --data-dir");
  const node = network.nodes[0]!;
  const { enclave, evidenceCid, writer: operatorWriter } = node.enclaveJobs;
  const owner = network.requester;
  const operator = operatorWriter.account.address;
  const checks: string[] = [];
  const check = (text: string) => {
    checks.push(text);
    reporter.detail(`✓ ${text}`);
  };

  await mkdir(dir, { recursive: true });
  const path = resolve(join(dir, "ledger.duckdb"));
  await rm(path, { force: true });
  await rm(`${path}.wal`, { force: true });
  await withDuckDb(path, async (run) => {
    await run("CREATE TABLE accounts (id INTEGER PRIMARY KEY, holder VARCHAR, balance INTEGER)");
    await run("INSERT INTO accounts VALUES (1, 'ada', 100), (2, 'bob', 50), (3, 'cy', 75)");
  });
  const balance = () => withDuckDb(path, async (run) => Number((await run("SELECT balance FROM accounts WHERE id = 2"))[0]![0]));
  const before = await balance();
  reporter.step(`owner ${owner.account.address} keeps a ledger (DuckDB file ${path}, table accounts); bob's balance is ${before}`);

  const dataset: GrantedDataset = { name: "demo-ledger", table: "accounts", connection: { type: "duckdb", path }, registry: network.deployment.registry };
  const chainNow = Number((await owner.getBlock()).timestamp);
  const request = {
    grants,
    operator,
    dataset,
    operations: ["update"],
    statement: STATEMENT,
    purpose: "credit bob 25 (support ticket 42)",
    notBefore: chainNow - 60,
    expiry: chainNow + 3600,
    maxUses: 1,
    enclaves: [{ signer: enclave.identity.signer, hpkePublicKey: enclave.identity.hpkePublicKey }],
  };
  const operate = (document: GrantDocument) =>
    runOperateJob({ enclave, provider: network.chain.provider, registry: network.deployment.registry, document, statement: STATEMENT, evidenceCid: evidenceCid!, store: network.store, writer: operatorWriter });

  reporter.step(`operator ${operator} (node 0) wants to run: ${STATEMENT}`);
  const unsigned = await createGrantDocument(owner, { ...request, relay: false });
  const none = await refusal(operate(unsigned.document), "GRANT_NOT_FOUND");
  reporter.step(`without a grant on chain the enclave refuses: [${none.code}] ${none.message}`);
  if ((await balance()) !== before) throw new GrantDemoError("GRANT_DEMO_FAILED", "a refused manipulation changed the ledger");
  check("refused without a grant: the enclave proved from the chain that no grant exists; the ledger is unchanged");

  const created = await createGrantDocument(owner, request);
  reporter.step(`owner signs a grant (EIP-712) and records it on chain: grant ${shortId(created.grantId)}, update only, this exact statement, 1 use, 1 hour (gas ${created.gasUsed})`);
  reporter.detail(`the ledger's location is sealed (HPKE) to enclave ${enclave.identity.signer}; the purpose "${request.purpose}" is public`);

  const run = await operate(created.document);
  const after = await balance();
  reporter.step(`under the grant the enclave runs it: ${run.receipt.rowsAffected} row changed, use ${run.receipt.use} recorded on chain (gas ${run.gasUsed})`);
  reporter.detail(`run ${run.receipt.runId}, provenance ${run.provenanceCid}`);
  if (after !== before + 25 || run.receipt.rowsAffected !== 1) throw new GrantDemoError("GRANT_DEMO_FAILED", `the granted statement should credit bob 25 (balance ${before} → ${before + 25}), got ${after}`);
  check(`allowed once under the grant: bob's balance ${before} → ${after}; scope checked against the owner's signature, window and uses against the chain`);

  const usedUp = await refusal(operate(created.document), "GRANT_USED_UP");
  reporter.step(`a second run is refused: [${usedUp.code}] ${usedUp.message}`);
  if ((await balance()) !== after) throw new GrantDemoError("GRANT_DEMO_FAILED", "a refused manipulation changed the ledger");
  check("refused when used up: the ledger is unchanged");

  const uses = await listGrantUses(owner, grants, created.grantId);
  const state = await readGrant(owner, grants, created.grantId);
  if (uses.length !== 1 || uses[0]!.provenanceDigest !== run.provenanceDigest || uses[0]!.runId !== run.receipt.runId || state.uses !== 1) {
    throw new GrantDemoError("GRANT_DEMO_FAILED", `the chain should list exactly the one use with its provenance digest; it lists ${uses.length}`);
  }
  const record = await readUseRecord(network.store, uses[0]!.provenanceDigest);
  if (!record.operate || record.operate.rowsAffected !== 1 || record.operate.statement.digest !== statementDigest(STATEMENT).toLowerCase()) {
    throw new GrantDemoError("GRANT_DEMO_FAILED", `the use's provenance record, found on IPFS by the digest on chain, should name the granted statement and 1 row: ${record.missing ?? "it does not"}`);
  }
  reporter.step(`the owner lists what was done under grant ${shortId(created.grantId)}: ${uses.length} use`);
  reporter.detail(`use 1: ${record.operate.statement.operation} on ${record.operate.dataset.table}, ${record.operate.rowsAffected} row, run ${uses[0]!.runId} by enclave ${uses[0]!.enclave}`);
  reporter.detail(`provenance ${record.provenanceCid}, found on IPFS by the digest on chain ${uses[0]!.provenanceDigest}`);
  check("the owner lists every use on chain (run id, enclave, provenance digest) and reads what it did from its provenance record");

  return {
    grantId: grantIdHex(created.grantId),
    refusedWithoutGrant: none.code,
    allowed: { runId: run.receipt.runId, rowsAffected: run.receipt.rowsAffected, provenanceCid: run.provenanceCid, transactionHash: run.transactionHash!, gasUsed: String(run.gasUsed) },
    refusedWhenUsedUp: usedUp.code,
    uses: uses.length,
    balance: { before, after },
    checks,
  };
}

/** `cloister demo grants [--data-dir <dir>] [--json]`. */
export async function demoGrantsCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { "data-dir": { type: "string" }, json: { type: "boolean", default: false } } });
  const reporter = stderrReporter({ always: !values.json });
  reporter.step("starting an embedded Cloister network (one process tree)");
  const network = await startEmbeddedNetwork({ dataDir: values["data-dir"], onStep: (m) => reporter.detail(m) });
  try {
    const result = await runGrantDemoSteps(network, join(network.dataDir, "grants-demo"), reporter);
    if (values.json) printJson({ ...result, verified: true });
    else process.stdout.write(["", "Checks:", ...result.checks.map((c) => `  ✓ ${c}`), "", `Grant ${shortId(BigInt(result.grantId))}: used once, as granted.`, ""].join("\n"));
    return 0;
  } finally {
    await network.close();
  }
}
