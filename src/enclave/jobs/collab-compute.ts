/**
 * `collab-compute`: the compute party's side of a clean-room run, in its enclave. authorize, before any row is
 * read: checks the collaboration (every party's signed approval, the approved SQL and policy, the run within
 * maxRuns), the recipient key against the terms' pin, attests every partner's enclave under the manifest and
 * measurement the terms pin for its party, opens the compute party's own descriptors, checks the query
 * against the output policy (DuckDB's parse tree, no data) and the DP budget. execute listens for the
 * partners (mutual attested TLS through its host's relay: each partner's certificate must carry evidence its
 * pinned manifest and measurement accept, for the TLS key its verified evidence binds), loads their rows into
 * an in-memory DuckDB as they arrive while it reads its own datasets through the connectors, turns off DuckDB's external access, runs exactly the approved SQL under the policy, and seals the
 * delivered rows to the recipient. anchor signs the Collaborations `Run` the contract records.
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { getAddress, type Hex } from "viem";
import { digestSet } from "../../protocol/anchor.ts";
import type { CollabChainView, CollabResult } from "../../protocol/collab-run.ts";
import { sha256 } from "../../crypto/sha256.ts";
import { prepareDelivery, resolveDelivery, type Delivery } from "./collab/deliver.ts";
import { holdResult } from "./collab/release.ts";
import { collaborationsDomain, epsilonFromFixed, epsilonToFixed, runDigest } from "../../protocol/collaboration.ts";
import { chargeEpsilon } from "../cleanroom/dp-budget.ts";
import { preparePolicyRun, runUnderPolicy, type PreparedPolicyRun } from "../cleanroom/run-query.ts";
import { collabRecordPart, type CollabComputeParams } from "./collab-params.ts";
import { datasetInputName } from "./collab-partner.ts";
import { serialize } from "node:v8";
import type { EnclaveNet } from "../net/connect.ts";
import type { NetError } from "../net/errors.ts";
import type { EnclaveListener } from "../net/listen.ts";
import { createMessageStream } from "../net/messages.ts";
import type { LoadedDataset } from "./collab/datasets.ts";
import { loadOwnDatasets, MAX_TRANSFER_MESSAGE, receiveDatasets, sqlString, TRANSFER_VERSION } from "./collab/transfer.ts";
import { checkUnchanged, type FileIdentity } from "./collab/file-identity.ts";
import { rowFilters } from "./collab/row-filter.ts";
import { proveCollabState, type CollabProvedAt } from "./collab/chain-state.ts";
import { CollabJobError, reportingRefusals } from "./collab/errors.ts";
import { checkCollaboration, checkQueryUnderPolicy, openDatasets, tlsPeerParty, tlsVerifier, verifyPeer, type CheckedCollaboration, type CollabTlsVerifier } from "./collab/verify.ts";
import type { JobModule } from "./job-module.ts";

interface AuthorizedCompute {
  checked: CheckedCollaboration;
  partners: { party: number; signer: `0x${string}`; measurement: string }[];
  descriptors: Record<string, Record<string, unknown>>;
  delivery: Delivery;
  epsilonSpentBefore: number;
  /** Where the compute party's own chain endpoints proved the collaboration's state, when it named them. */
  provedAt?: CollabProvedAt;
  /** The compute party's endpoints: the result is then released only once the run's record is proved there. */
  chainView?: CollabChainView;
  listening: PartnerListener;
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
  authorize: (ctx, p) =>
    reportingRefusals(async () => {
      if (!ctx.net) throw new CollabJobError("COLLAB_PEER_REFUSED", "this enclave has no network: partners cannot reach it");
      // Listening before the checks: the partners' hosts learn the address and their enclaves make their own checks
      // meanwhile. A connection is only handled in execute, once every check here passed (its peer is verified again
      // then, against the partners attested below); a refusal here closes the listener.
      const listening = await listenForPartners(ctx.net, p.partners);
      try {
        return { ...(await authorizeCompute(ctx, p)), listening };
      } catch (e) {
        await listening.listener.close();
        throw e;
      }
    }),
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

async function authorizeCompute(ctx: Parameters<typeof openDatasets>[0], p: CollabComputeParams): Promise<Omit<AuthorizedCompute, "listening">> {
  const checked = await checkCollaboration(p.collaboration);
  const { terms, policy } = checked;
  if (p.runId < 1 || p.runId > terms.maxRuns) throw new CollabJobError("COLLAB_TERMS_INVALID", `run ${p.runId} is outside the terms' 1..${terms.maxRuns} runs: maxRuns is reached`);
  // The recipient: the terms name it and pin its key or certificate; the host cannot redirect the result.
  const delivery = await resolveDelivery(ctx, checked, p.delivery);
  // Every partner, once each, attested under its party's pins.
  const partners: AuthorizedCompute["partners"] = [];
  const expected = terms.parties.map((_, i) => i).filter((i) => i !== terms.computeParty);
  const given = p.partners.map((x) => x.party).sort((x, y) => x - y);
  if (given.length !== expected.length || given.some((g, i) => g !== expected[i])) {
    throw new CollabJobError("COLLAB_TERMS_INVALID", `the job introduces partners [${given.join(", ")}]; the terms have partners [${expected.join(", ")}]`);
  }
  for (const peer of p.partners) partners.push({ party: peer.party, ...(await verifyPeer(checked, peer, peer.party)) });
  // The query and the budget, before any data is read.
  await checkQueryUnderPolicy(checked);
  if (policy.dp && epsilonToFixed(policy.dp.budget) !== terms.dpBudget) throw new CollabJobError("COLLAB_POLICY_MISMATCH", `the policy's DP budget ${policy.dp.budget} is not the terms' ${epsilonFromFixed(terms.dpBudget)}`);
  const opened = await openDatasets(ctx, checked, terms.computeParty, p.datasets);
  // With endpoints of its own, the compute party's enclave proves the approvals and runs, and takes the epsilon spent from the chain, not from its host.
  const proven = opened.chainView ? await proveCollabState(opened.chainView, checked, p.runId, p.collaboration.partyNames) : undefined;
  const epsilonSpentBefore = Number(proven ? proven.dpSpent : p.epsilonSpentBefore) / 1e6;
  if (policy.dp) chargeEpsilon(policy.dp, epsilonSpentBefore, 1);
  return { checked, partners, descriptors: opened.datasets, delivery, epsilonSpentBefore, ...(proven ? { provedAt: proven.provedAt, chainView: opened.chainView } : {}) };
}

async function executeCompute(ctx: Parameters<typeof openDatasets>[0], p: CollabComputeParams, a: AuthorizedCompute) {
  const partners = a.listening;
  let instance;
  try {
    instance = await DuckDBInstance.create(":memory:", {
      autoinstall_known_extensions: "false",
      autoload_known_extensions: "false",
      ...(p.memoryMb ? { memory_limit: `${p.memoryMb}MB` } : {}),
    });
  } catch (e) {
    await partners.listener.close();
    throw e;
  }
  // Closed once the outcome is out (the runtime calls release), or at once when the run fails.
  const close = () => instance.closeSync();
  try {
    return { ...(await executeOn(ctx, p, a, instance)), release: close };
  } catch (e) {
    close();
    throw e;
  }
}

async function executeOn(ctx: Parameters<typeof openDatasets>[0], p: CollabComputeParams, a: AuthorizedCompute, instance: DuckDBInstance) {
  const { checked } = a;
  const names = p.collaboration.partyNames;
  const me = ctx.keys.account.address;
  const taken = new Set<string>();
  const reserve = (name: string) => {
    if (taken.has(name.toLowerCase())) throw new CollabJobError("COLLAB_DATASET_NAME", `two parties name a dataset "${name}": dataset names must be unique across the collaboration (they are the query's table names)`);
    taken.add(name.toLowerCase());
  };
  const received = await receiveAll(a.listening, instance, p, a, reserve, ctx.net);
  const datasets: LoadedDataset[] = received.datasets;
  const inPlace = received.ownInPlace;
  const connection = await instance.connect();
  let result;
  try {
    // From here the query sees only the loaded tables and the compute party's parquet files it reads in place
    // (allowed_paths: exactly those files): no other file, no network, no setting changes.
    if (inPlace.length > 0) await connection.run(`SET allowed_paths = [${inPlace.map((f) => sqlString(f.path)).join(", ")}]`);
    await connection.run("SET enable_external_access = false");
    await connection.run("SET lock_configuration = true");
    const prepared = await received.prepared;
    result = await runUnderPolicy(connection, checked.sql, checked.policy, { epsilonSpentBefore: a.epsilonSpentBefore, ...(prepared ? { prepared } : {}) });
  } finally {
    connection.closeSync();
  }
  // The files read in place are the ones hashed: unchanged since (file-identity.ts).
  for (const file of inPlace) await checkUnchanged(file);

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
  // With the compute party's endpoints the result stays inside until the record is proved (collab/release.ts):
  // the sealed result is withheld from the host, a table's or an endpoint's rows are sent only then.
  const { output: sealed, send } = await prepareDelivery(ctx, checked, p.runId, a.delivery, delivered, a.chainView !== undefined);
  const withheld = a.chainView !== undefined && a.delivery.kind === "party";
  if (a.chainView) {
    holdResult({ ...bindingOf(p), runId: p.runId, resultDigest: sha256(sealed) }, a.chainView, async () => {
      await send();
      return sealed;
    });
  } else {
    await send();
  }
  const inputs = datasets.map((d) => ({ name: datasetInputName(d.party, d.name), digest: d.digest as Hex }));
  runCounts.set(p, { inputDigest: digestSet(inputs), rowsDelivered: BigInt(result.rows.length), rowsSuppressed: BigInt(result.suppressed), epsilonSpent, termsHash: checked.termsHash });
  const terms = checked.terms;
  const policy = checked.policy;
  return {
    outputs: [{ name: "result", bytes: sealed, ...(withheld ? { withheld: true as const } : {}) }],
    inputs,
    resourceUse: null,
    error: null,
    kindPredicate: {
      ...collabRecordPart(p.collaboration, p.runId, checked.termsHash),
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
      datasets: datasets.map((d) => ({ party: d.party, name: d.name, digest: d.digest.toLowerCase() as Hex, rows: d.rowCount, ...(d.of === "file" ? { of: "file" as const } : {}), ...(d.filter ? { filter: d.filter } : {}) })),
      rowsDelivered: result.rows.length,
      rowsSuppressed: result.suppressed,
      epsilonSpent: epsilonFromFixed(epsilonSpent),
      recipient: { descriptor: terms.recipient, pin: terms.recipientPin.toLowerCase() as Hex },
      ...(a.provedAt ? { provedAt: a.provedAt } : {}),
      release: a.chainView ? ("after-record-proved" as const) : ("at-compute" as const),
    },
  };
}

const bindingOf = (p: CollabComputeParams) => ({ chainId: p.collaboration.chainId, contract: p.collaboration.contract, collaborationId: p.collaboration.id });

function cellOut(value: unknown): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "bigint") return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "string") return value;
  return String(value);
}

interface PartnerListener {
  listener: EnclaveListener;
  /** The handshakes' verifier: which partner's policy accepted which evidence (tlsPeerParty does not check it twice). */
  verifier: CollabTlsVerifier;
  /** Refusals of inbound peers (those before the handler is set are kept for it). */
  onRefused(handler: (e: NetError) => void): void;
}

/**
 * Listens for the partners: mutual attested TLS through this host's relay, each peer's evidence checked under
 * its pinned manifest. The verifier parses the manifests only at the first handshake: authorize's checks, which
 * may still be running, parse them first and refuse a bad one with its reason.
 */
async function listenForPartners(net: EnclaveNet, partners: CollabComputeParams["partners"]): Promise<PartnerListener> {
  const early: NetError[] = [];
  let handler: ((e: NetError) => void) | undefined;
  const verifier = tlsVerifier(partners);
  const listener = await net.listen({ peer: { kind: "attested", verify: verifier.verify }, onRefused: (e) => (handler ? handler(e) : early.push(e)) });
  return {
    listener,
    verifier,
    onRefused(h) {
      handler = h;
      for (const e of early.splice(0)) h(e);
    },
  };
}

/**
 * Loads the compute party's own datasets while the partners connect, and each partner's rows as they arrive.
 * Every partner must connect and finish within the timeout; a refused or failed peer fails the run. Closes the listener.
 * `net` reaches the compute party's own pinned database.
 */
async function receiveAll(
  { listener, verifier, onRefused }: PartnerListener,
  instance: DuckDBInstance,
  p: CollabComputeParams,
  a: AuthorizedCompute,
  reserve: (name: string) => void,
  net: EnclaveNet | undefined,
): Promise<{ datasets: LoadedDataset[]; ownInPlace: FileIdentity[]; prepared: Promise<PreparedPolicyRun | undefined> }> {
  const { checked } = a;
  const names = p.collaboration.partyNames;
  let fail!: (e: unknown) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {});
  onRefused((e) => fail(new CollabJobError("COLLAB_PEER_REFUSED", `an inbound peer was refused before it could send rows (${e.code}): a partner's enclave is not the one the terms pin`)));
  // The conditions a partner may have applied to its file: the approved query's own (row-filter.ts).
  const filters = rowFilters(checked.sql, checked.policy);
  filters.catch(() => {});
  const pending = new Map(p.partners.map((peer) => [peer.party, { resolve: (_: LoadedDataset[]) => {}, promise: undefined as unknown as Promise<LoadedDataset[]> }]));
  for (const entry of pending.values()) entry.promise = new Promise((resolve) => (entry.resolve = resolve));
  // Every partner's tables exist once its header is read (their rows still arriving).
  const tables = new Map(p.partners.map((peer) => [peer.party, Promise.withResolvers<void>()]));
  listener.onConnection(({ socket, peer }) => {
    void (async () => {
      const stream = createMessageStream(socket, { maxMessageBytes: MAX_TRANSFER_MESSAGE });
      try {
        const partner = await tlsPeerParty(checked, peer, p.partners, verifier);
        const entry = pending.get(partner.party);
        if (!entry) throw new CollabJobError("COLLAB_TRANSFER_INVALID", `party ${partner.party} connected twice`);
        pending.delete(partner.party);
        const header = { v: TRANSFER_VERSION, collaborationId: p.collaboration.id.toString(), runId: p.runId, party: partner.party, termsHash: checked.termsHash };
        const loaded = await receiveDatasets(stream, instance, header, names[partner.party]!, reserve, filters, () => tables.get(partner.party)?.resolve());
        entry.resolve(loaded);
        // The rows are loaded: the acknowledgement is the partner's to hear; a connection it already closed changes nothing here.
        await stream.send(serialize({ ok: true })).then(() => stream.end()).catch(() => {});
      } catch (e) {
        await stream.send(serialize({ error: e instanceof CollabJobError ? `${e.code}: ${e.message}` : "COLLAB_TRANSFER_INVALID: the rows could not be loaded" })).catch(() => {});
        socket.destroy();
        fail(e);
      }
    })();
  });
  const timeoutMs = p.partnerTimeoutMs ?? 120_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const missing = [...pending.keys()].map((i) => names[i]);
      reject(new CollabJobError("COLLAB_PEER_REFUSED", `no rows from ${missing.join(", ")} within ${timeoutMs} ms: their enclaves did not connect, or refused this enclave`));
    }, timeoutMs);
  });
  timeout.catch(() => {});
  let preparing: Promise<PreparedPolicyRun | undefined> | undefined;
  let failedRun = false;
  try {
    const own = loadOwnDatasets(instance, names[checked.terms.computeParty]!, a.descriptors, p.baseDir, reserve, net);
    // The query is checked and augmented while the partners' rows arrive; where a table only gets its final name
    // once loaded (a connector's rows), this fails and runUnderPolicy prepares it after the load instead.
    const prepared = Promise.all([own, ...[...tables.values()].map((t) => t.promise)]).then(
      () => (failedRun ? undefined : (preparing = prepareOn(instance, checked))),
      () => undefined,
    );
    const partners = [...pending.values()].map((e) => e.promise);
    const [mine, ...theirs] = await Promise.race([Promise.all([own, ...partners]), failed, timeout]);
    return { datasets: [...mine.datasets, ...theirs.flat()], ownInPlace: mine.inPlace, prepared };
  } catch (e) {
    // No statement may still run on the instance when it closes.
    failedRun = true;
    await preparing;
    throw e;
  } finally {
    clearTimeout(timer);
    await listener.close();
  }
}

/** `preparePolicyRun` on a connection of its own; undefined when a table does not exist yet under its dataset's name. */
async function prepareOn(instance: DuckDBInstance, checked: CheckedCollaboration): Promise<PreparedPolicyRun | undefined> {
  let connection;
  try {
    connection = await instance.connect();
    return await preparePolicyRun(connection, checked.sql, checked.policy);
  } catch {
    return undefined;
  } finally {
    connection?.closeSync();
  }
}
