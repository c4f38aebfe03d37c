/**
 * A node killed (SIGKILL, node and enclave processes) in the middle of a
 * scheduled pipeline run on a multi-process devnet: the other candidate
 * takes the slot over after the deadline and completes the run; it is
 * anchored once and the PostgreSQL destination holds each row once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pgLib from "pg";
import { readPipelineRuns } from "../../src/chain/actions/read-pipeline.ts";
import { startMultiProcessDevnet } from "../../src/devnet/multi-process.ts";
import { localNetworkManifest } from "../../src/devnet/network-policy.ts";
import { connectToNetwork } from "../../src/devnet/remote-client.ts";
import type { HostEvent } from "../../src/host/log.ts";
import { listVerifiedEnclaves } from "../../src/sdk/enclaves.ts";
import { createPipeline } from "../../src/sdk/pipelines.ts";
import { pg, pgUrl, uniqueName, unreachable } from "../enclave/connectors/servers.ts";

const down = await unreachable(pg.host, pg.port);
const ROWS = 30_000;

test("a node killed mid-run: the other candidate completes the run, anchored once, each row once", { skip: down ? `PostgreSQL unreachable: ${down}` : false, timeout: 300_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "cloister-pl-kill-"));
  const src = uniqueName("pl_kill_src");
  const dst = uniqueName("pl_kill_dst");
  const client = new pgLib.Client({ host: pg.host, port: pg.port, user: pg.user, database: pg.database });
  await client.connect();
  await client.query(`CREATE TABLE ${src} AS SELECT g AS id, 'c' || (g % 97) AS customer, (g % 1000) / 10.0 AS amount FROM generate_series(1, ${ROWS}) g`);
  process.env.CLOISTER_PIPELINE_FAILOVER_MS = "4000";
  const events: { node: number; host: HostEvent }[] = [];
  let killed = -1;
  const devnet = await startMultiProcessDevnet({
    dataDir: dir,
    nodes: 2,
    hostEvents: ["pipeline-started", "pipeline-anchored", "pipeline-failed"],
    onNodeMessage: (node, message) => {
      if (message.event !== "host") return;
      events.push({ node, host: message.host });
      // The first node to start the run dies at once, in the middle of it.
      if (killed < 0 && message.host.type === "pipeline-started") {
        killed = node;
        void devnet.killNode(node);
      }
    },
  });
  const { manifest, policy } = await localNetworkManifest(devnet.simPkiDir);
  const owner = await connectToNetwork({ rpcUrl: devnet.rpcUrl, ipfsUrl: devnet.ipfsUrl, deployment: { casUrl: devnet.casUrl }, manifest });
  try {
    const contract = owner.deployment.pipelines!;
    const { verified } = await listVerifiedEnclaves({ reader: owner.writer, registry: owner.deployment.registry, fromBlock: 0n, store: owner.store, policy });
    assert.equal(verified.length, 2);
    const { pipelineId } = await createPipeline({
      writer: owner.writer,
      store: owner.store,
      contract,
      spec: {
        name: "killed",
        source: { type: "postgres", url: pgUrl, table: src, cursor: "id" },
        transform: { kind: "sql", sql: "SELECT id, customer, amount * 2 AS doubled FROM source" },
        destination: { type: "postgres", url: pgUrl, table: dst, mode: "append" },
        schedule: "@every 3600s",
      },
      candidates: verified,
    });
    let runs = await readPipelineRuns(owner.writer, contract, pipelineId);
    for (let i = 0; i < 1200 && runs.length === 0; i++) {
      await sleep(100);
      runs = await readPipelineRuns(owner.writer, contract, pipelineId);
    }
    assert.equal(runs.length, 1, "the slot's run is anchored");
    assert.ok(killed >= 0, "a node was killed");
    const survivor = 1 - killed;
    assert.equal(runs[0]!.enclave.toLowerCase(), devnet.nodes[survivor]!.signer.toLowerCase(), "by the surviving candidate");
    assert.ok(events.some((e) => e.node === survivor && e.host.type === "pipeline-started" && e.host.failover), "which took it over as a failover");
    assert.equal(runs[0]!.recordsRead, BigInt(ROWS));
    const { rows } = await client.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM ${dst}`);
    assert.deepEqual(rows[0], { n: ROWS, d: ROWS }, "each row once");
    const anchored = events.find((e) => e.host.type === "pipeline-anchored")?.host;
    t.diagnostic(`node ${killed} killed mid-run; the survivor ${anchored && "resumed" in anchored && anchored.resumed ? "found the dead node's load committed (resumed from the run marker)" : "loaded the run itself (the dead node's transaction never committed)"}`);
    await sleep(1500);
    assert.equal((await readPipelineRuns(owner.writer, contract, pipelineId)).length, 1, "anchored exactly once");
  } finally {
    delete process.env.CLOISTER_PIPELINE_FAILOVER_MS;
    await owner.close();
    await devnet.close();
    await client.query(`DROP TABLE IF EXISTS ${src}, ${dst}`).catch(() => undefined);
    await client.end();
    await rm(dir, { recursive: true, force: true });
  }
});
