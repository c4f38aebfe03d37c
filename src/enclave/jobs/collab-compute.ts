/**
 * `collab-compute`: the compute party's side of a clean-room run, in its enclave. authorize, before any row is
 * read: checks the collaboration (every party's signed approval, the approved SQL and policy, the run within
 * maxRuns), the recipient key against the terms' pin, attests every partner's enclave under the manifest and
 * measurement the terms pin for its party, opens the compute party's own descriptors, checks the query
 * against the output policy (DuckDB's parse tree, no data) and the DP budget. execute opens each partner's
 * sealed rows (only this enclave's key opens them, only for this run and party) and checks the partner's
 * signed anchor over them, reads its own datasets through the connectors, loads everything into an in-memory
 * DuckDB, turns off DuckDB's external access, runs exactly the approved SQL under the policy, and seals the
 * delivered rows to the recipient. anchor signs the Collaborations `Run` the contract records.
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { getAddress, isAddressEqual, recoverAddress, type Hex } from "viem";
import { fromHex } from "../../crypto/bytes.ts";
import { sha256 } from "../../crypto/sha256.ts";
import { digestSet } from "../../protocol/anchor.ts";
import { collabResultInfo, collabTransferInfo, encodeCollabResult, openCollabBlob, sealCollabBlob, type CollabResult } from "../../protocol/collab-run.ts";
import { collaborationsDomain, epsilonFromFixed, epsilonToFixed, runDigest } from "../../protocol/collaboration.ts";
import { verifyProvenance } from "../../protocol/provenance.ts";
import { chargeEpsilon } from "../cleanroom/dp-budget.ts";
import { runUnderPolicy } from "../cleanroom/run-query.ts";
import type { CollabComputeParams } from "./collab-params.ts";
import { datasetInputName, partnerAnchorDigest } from "./collab-partner.ts";
import { decodeTransfer, loadDataset, readDatasets, type ReadDataset } from "./collab/datasets.ts";
import { CollabJobError, reportingRefusals } from "./collab/errors.ts";
import { checkCollaboration, checkQueryUnderPolicy, openDatasets, verifyPeer, type CheckedCollaboration } from "./collab/verify.ts";
import type { JobModule } from "./job-module.ts";

interface AuthorizedCompute {
  checked: CheckedCollaboration;
  partners: { party: number; signer: `0x${string}`; measurement: string }[];
  descriptors: Record<string, Record<string, unknown>>;
  recipientKey: Uint8Array;
  epsilonSpentBefore: number;
}

interface RunCounts {
  inputDigest: Hex;
  rowsDelivered: bigint;
  rowsSuppressed: bigint;
  epsilonSpent: bigint;
  termsHash: Hex;
}
const runCounts = new WeakMap<CollabComputeParams, RunCounts>();

export const collabComputeJob: JobModule<"collab-compute", CollabComputeParams, AuthorizedCompute> = {
  kind: "collab-compute",
  jobId: (p) => p.collaboration.id,
  authorize: (ctx, p) => reportingRefusals(() => authorizeCompute(ctx, p)),
  execute: (ctx, p, a) => reportingRefusals(() => executeCompute(ctx, p, a)),
  async anchor(ctx, p, run) {
    const counts = runCounts.get(p);
    if (!counts) throw new CollabJobError("COLLAB_TERMS_INVALID", "anchor before execute");
    const hash = runDigest(collaborationsDomain(p.collaboration.chainId, p.collaboration.contract), p.collaboration.id, counts.termsHash, {
      runId: p.runId,
      enclave: ctx.keys.account.address,
      inputDigest: counts.inputDigest,
      resultDigest: run.outputs[0]!.digest,
      provenanceDigest: run.provenanceDigest,
      rowsDelivered: counts.rowsDelivered,
      rowsSuppressed: counts.rowsSuppressed,
      epsilonSpent: counts.epsilonSpent,
    });
    return { type: "Collaborations.Run", signature: await ctx.keys.account.sign({ hash }) };
  },
};

async function authorizeCompute(ctx: Parameters<typeof openDatasets>[0], p: CollabComputeParams): Promise<AuthorizedCompute> {
  const checked = await checkCollaboration(p.collaboration);
  const { terms, policy } = checked;
  if (p.runId < 1 || p.runId > terms.maxRuns) throw new CollabJobError("COLLAB_TERMS_INVALID", `run ${p.runId} is outside the terms' 1..${terms.maxRuns} runs: maxRuns is reached`);
  // The recipient: the terms name it and pin its key; the host cannot redirect the result.
  const recipientKey = fromHex(p.delivery.key);
  if (!terms.recipient.startsWith("party:") || sha256(recipientKey).toLowerCase() !== terms.recipientPin.toLowerCase()) {
    throw new CollabJobError(
      "COLLAB_RECIPIENT_PIN_MISMATCH",
      `the recipient key given (SHA-256 ${sha256(recipientKey)}) is not the one the terms pin for ${terms.recipient} (${terms.recipientPin}): the result goes only to the approved recipient`,
    );
  }
  // Every partner, once each, attested under its party's pins.
  const partners: AuthorizedCompute["partners"] = [];
  const expected = terms.parties.map((_, i) => i).filter((i) => i !== terms.computeParty);
  const given = p.partners.map((x) => x.peer.party).sort((x, y) => x - y);
  if (given.length !== expected.length || given.some((g, i) => g !== expected[i])) {
    throw new CollabJobError("COLLAB_TERMS_INVALID", `the job introduces partners [${given.join(", ")}]; the terms have partners [${expected.join(", ")}]`);
  }
  for (const partner of p.partners) partners.push({ party: partner.peer.party, ...(await verifyPeer(checked, partner.peer, partner.peer.party)) });
  // The query and the budget, before any data is read.
  await checkQueryUnderPolicy(checked);
  const epsilonSpentBefore = Number(p.epsilonSpentBefore) / 1e6;
  if (policy.dp) {
    if (epsilonToFixed(policy.dp.budget) !== terms.dpBudget) throw new CollabJobError("COLLAB_POLICY_MISMATCH", `the policy's DP budget ${policy.dp.budget} is not the terms' ${epsilonFromFixed(terms.dpBudget)}`);
    chargeEpsilon(policy.dp, epsilonSpentBefore, 1);
  }
  const descriptors = await openDatasets(ctx, checked, terms.computeParty, p.datasets);
  return { checked, partners, descriptors, recipientKey, epsilonSpentBefore };
}

async function executeCompute(ctx: Parameters<typeof openDatasets>[0], p: CollabComputeParams, a: AuthorizedCompute) {
  const { checked } = a;
  const names = p.collaboration.partyNames;
  const me = ctx.keys.account.address;
  const datasets: ReadDataset[] = [];
  for (const partner of p.partners) {
    const party = partner.peer.party;
    const name = names[party]!;
    // The partner's provenance, signed by its attested provenance key, names the datasets it read.
    let statement;
    try {
      statement = verifyProvenance(partner.provenance, fromHex(partner.peer.provenanceKey));
    } catch {
      throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} (${name})'s provenance is not signed by its attested enclave`);
    }
    const info = collabTransferInfo(checked.binding, p.runId, party, me);
    const inputs = statement.predicate.inputs.map((i) => ({ name: i.name, digest: `0x${i.digest.sha256}` as Hex }));
    const anchor = partnerAnchorDigest(checked.binding, checked.termsHash, inputs, sha256(partner.transfer), sha256(partner.provenance));
    let signer: `0x${string}` | undefined;
    try {
      signer = await recoverAddress({ hash: anchor, signature: partner.signature });
    } catch {
      signer = undefined;
    }
    if (!signer || !isAddressEqual(signer, partner.peer.signer)) {
      throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} (${name})'s rows are not signed by its attested enclave ${partner.peer.signer} for this collaboration`);
    }
    const payload = await openCollabBlob(ctx.keys.hpke.privateKey, info, partner.transfer, `party ${party}'s rows`);
    const received = decodeTransfer(payload, name);
    payload.fill(0);
    for (const d of received) {
      const claimed = inputs.find((i) => i.name === datasetInputName(name, d.name));
      if (!claimed || claimed.digest.toLowerCase() !== d.digest.toLowerCase()) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${party} (${name})'s dataset ${d.name} is not the one its provenance names`);
    }
    datasets.push(...received);
  }
  datasets.push(...(await readDatasets(names[checked.terms.computeParty]!, a.descriptors, p.baseDir)));
  const seen = new Set<string>();
  for (const d of datasets) {
    if (seen.has(d.name.toLowerCase())) throw new CollabJobError("COLLAB_DATASET_NAME", `two parties name a dataset "${d.name}": dataset names must be unique across the collaboration (they are the query's table names)`);
    seen.add(d.name.toLowerCase());
  }

  const instance = await DuckDBInstance.create(":memory:", {
    autoinstall_known_extensions: "false",
    autoload_known_extensions: "false",
    ...(p.memoryMb ? { memory_limit: `${p.memoryMb}MB` } : {}),
  });
  const connection = await instance.connect();
  let result;
  try {
    for (const d of datasets) {
      await loadDataset(connection, d);
      d.batches = [];
    }
    // From here the query sees only the loaded tables: no file, no network, no setting changes.
    await connection.run("SET enable_external_access = false");
    await connection.run("SET lock_configuration = true");
    result = await runUnderPolicy(connection, checked.sql, checked.policy, { epsilonSpentBefore: a.epsilonSpentBefore });
  } finally {
    connection.closeSync();
    instance.closeSync();
  }

  const epsilonSpent = epsilonToFixed(result.epsilonSpent);
  const delivered: CollabResult = {
    collaborationId: p.collaboration.id.toString(),
    runId: p.runId,
    columns: [...result.columns],
    rows: result.rows.map((row) => row.map(cellOut)),
    suppressed: result.suppressed,
    epsilonSpent: epsilonFromFixed(epsilonSpent),
    noised: [...result.noised],
  };
  const sealed = await sealCollabBlob(a.recipientKey, collabResultInfo(checked.binding, p.runId, a.recipientKey), encodeCollabResult(delivered));
  const inputs = datasets.map((d) => ({ name: datasetInputName(d.party, d.name), digest: d.digest as Hex }));
  runCounts.set(p, { inputDigest: digestSet(inputs), rowsDelivered: BigInt(result.rows.length), rowsSuppressed: BigInt(result.suppressed), epsilonSpent, termsHash: checked.termsHash });
  const terms = checked.terms;
  const policy = checked.policy;
  return {
    outputs: [{ name: "result", bytes: sealed }],
    inputs,
    resourceUse: null,
    error: null,
    kindPredicate: {
      chainId: p.collaboration.chainId.toString(),
      contract: getAddress(p.collaboration.contract),
      collaborationId: p.collaboration.id.toString(),
      runId: p.runId,
      termsHash: checked.termsHash.toLowerCase() as Hex,
      queryDigest: terms.queryDigest.toLowerCase() as Hex,
      policyDigest: terms.policyDigest.toLowerCase() as Hex,
      policy: {
        identity: policy.identity,
        minGroupSize: policy.minGroupSize,
        ...(policy.allowedAggregates ? { allowedAggregates: policy.allowedAggregates } : {}),
        ...(policy.dp ? { dp: { epsilon: policy.dp.epsilon, budget: policy.dp.budget } } : {}),
      },
      parties: terms.parties.map((party, index) => {
        const enclave = index === terms.computeParty ? { signer: getAddress(me), measurement: ctx.measurement } : a.partners.find((x) => x.party === index)!;
        return { index, name: names[index]!, account: getAddress(party.account), enclave: { signer: getAddress(enclave.signer), measurement: enclave.measurement } };
      }),
      datasets: datasets.map((d) => ({ party: d.party, name: d.name, digest: d.digest.toLowerCase() as Hex, rows: d.rowCount })),
      rowsDelivered: result.rows.length,
      rowsSuppressed: result.suppressed,
      epsilonSpent: epsilonFromFixed(epsilonSpent),
      recipient: { descriptor: terms.recipient, pin: terms.recipientPin.toLowerCase() as Hex },
    },
  };
}

function cellOut(value: unknown): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "bigint") return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "string") return value;
  return String(value);
}
