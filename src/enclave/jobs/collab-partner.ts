/**
 * `collab-partner`: one party's side of a clean-room run, in that party's own enclave. authorize checks the
 * collaboration (every party's signed approval of these terms, the approved SQL and policy, the SQL against
 * the output policy, so a row-level query is refused before any row is read), attests the
 * compute enclave against the manifest and measurement the terms pin for the compute party, and opens the
 * party's dataset descriptors (sealed by the party to this enclave; the credentials never reach the host).
 * execute connects to the compute enclave over mutual attested TLS (through both hosts' relays; the compute
 * enclave's certificate must carry evidence its pinned manifest and measurement accept, for the TLS key its
 * verified evidence binds), reads the datasets through the connectors inside the enclave and streams the rows
 * batch by batch (collab/transfer.ts). Its output is a public receipt (digests and counts); the anchor is a
 * JobAnchor over the terms hash, the datasets' digests, the receipt and this provenance.
 */
import { getAddress, type Hex } from "viem";
import { canonicalJsonBytes } from "../../crypto/canonical-json.ts";
import { anchorDigest, anchorDomain, digestSet } from "../../protocol/anchor.ts";
import type { CollabBinding } from "../../protocol/collab-run.ts";
import { collaborationsDomainName } from "../../protocol/collaboration.ts";
import { collabRecordPart, type CollabPartnerParams } from "./collab-params.ts";
import { createMessageStream } from "../net/messages.ts";
import { fileReaderInstance, MAX_TRANSFER_MESSAGE, openSources, sendDatasets, TRANSFER_VERSION } from "./collab/transfer.ts";
import { namedColumns } from "./collab/projection.ts";
import { rowFilters } from "./collab/row-filter.ts";
import { proveCollabState, type CollabProvedAt } from "./collab/chain-state.ts";
import { CollabJobError, reportingRefusals } from "./collab/errors.ts";
import { checkCollaboration, checkQueryUnderPolicy, openDatasets, tlsPeerParty, tlsVerifier, verifyPeer, type CheckedCollaboration } from "./collab/verify.ts";
import type { EnclaveContext, JobModule } from "./job-module.ts";
import type { DuckDBInstance } from "@duckdb/node-api";

interface AuthorizedPartner {
  checked: CheckedCollaboration;
  compute: { signer: `0x${string}`; measurement: string };
  descriptors: Record<string, Record<string, unknown>>;
  /** Where the party's own chain endpoints proved the collaboration's state, when it named them. */
  provedAt?: CollabProvedAt;
  /** The DuckDB instance that will read the party's files, started with the checks (it reads nothing before execute). */
  reader: Promise<DuckDBInstance>;
  /** What of its files the party sends, from the approved SQL alone (worked out during the checks): the columns it names (projection.ts) and the rows its conditions keep (row-filter.ts). */
  plan: Promise<[ReadonlySet<string> | undefined, ReadonlyMap<string, string>]>;
}

/** The name under which a party's dataset enters digest sets and provenance. */
export const datasetInputName = (party: string, dataset: string) => `${party}/${dataset}`;

export const collabPartnerJob: JobModule<"collab-partner", CollabPartnerParams, AuthorizedPartner> = {
  kind: "collab-partner",
  jobId: (p) => p.collaboration.id,
  authorize: (ctx, p) =>
    reportingRefusals(async () => {
      const reader = fileReaderInstance();
      reader.catch(() => {});
      try {
        return { ...(await authorizePartner(ctx, p)), reader };
      } catch (e) {
        await reader.then((instance) => instance.closeSync(), () => {});
        throw e;
      }
    }),
  execute: (ctx, p, a) =>
    reportingRefusals(async () => {
      const party = p.collaboration.partyNames[p.party]!;
      if (!ctx.net) throw new CollabJobError("COLLAB_PEER_REFUSED", "this enclave has no network: it cannot reach the compute enclave");
      // The datasets open (a file read by DuckDB and its hash begun, or a reader or connection opened) while the connection is made; nothing is sent before the peer is verified.
      // A file sends only the columns the approved query and policy name, and only the rows its own conditions keep (the plan).
      const opening = a.plan.then(
        ([columns, filters]) => openSources(a.descriptors, p.baseDir, ctx.net, columns, a.reader, filters),
        async (e: unknown) => {
          await a.reader.then((instance) => instance.closeSync(), () => {});
          throw e;
        },
      );
      opening.catch(() => {});
      const release = () => opening.then((s) => s.close(), () => {});
      let conn;
      try {
        // Mutual attested TLS: the compute enclave's certificate must carry evidence its pinned manifest accepts, for the key its verified evidence binds.
        const verifier = tlsVerifier([p.compute]);
        conn = await ctx.net.connect({ ...p.computeAddress, pin: { kind: "attested", verify: verifier.verify } });
        await tlsPeerParty(a.checked, conn.peer!, [p.compute], verifier);
      } catch (e) {
        conn?.socket.destroy();
        await release();
        throw e;
      }
      try {
        const stream = createMessageStream(conn.socket, { maxMessageBytes: MAX_TRANSFER_MESSAGE });
        const header = { v: TRANSFER_VERSION, collaborationId: p.collaboration.id.toString(), runId: p.runId, party: p.party, termsHash: a.checked.termsHash };
        const sent = await sendDatasets(stream, header, party, await opening);
        const inputs = sent.map((d) => ({ name: datasetInputName(party, d.name), digest: d.digest as Hex }));
        anchorInputs.set(p, { inputs, termsHash: a.checked.termsHash });
        const datasets = sent.map((d) => ({ party, name: d.name, digest: d.digest.toLowerCase() as Hex, rows: d.rowCount, ...(d.of === "file" ? { of: "file" as const } : {}), ...(d.filter ? { filter: d.filter } : {}) }));
        // The receipt: what this partner sent, to whom (public: digests and counts, no row).
        const receipt = canonicalJsonBytes({ collaborationId: header.collaborationId, runId: p.runId, party: p.party, compute: getAddress(a.compute.signer), datasets });
        return {
          outputs: [{ name: "receipt", bytes: receipt }],
          inputs,
          resourceUse: null,
          error: null,
          kindPredicate: {
            ...collabRecordPart(p.collaboration, p.runId, a.checked.termsHash),
            party: p.party,
            datasets,
            computeEnclave: { signer: getAddress(a.compute.signer), measurement: a.compute.measurement },
            ...(a.provedAt ? { provedAt: a.provedAt } : {}),
          },
        };
      } finally {
        conn.socket.destroy();
        await release();
      }
    }),
  async anchor(ctx, p, run) {
    const a = anchorInputs.get(p);
    if (!a) throw new CollabJobError("COLLAB_TERMS_INVALID", "anchor before execute");
    const { chainId, contract, id } = p.collaboration;
    return { type: "JobAnchor", signature: await ctx.keys.account.sign({ hash: partnerAnchorDigest({ chainId, contract, collaborationId: id }, a.termsHash, a.inputs, run.outputs[0]!.digest, run.provenanceDigest) }) };
  },
};

/** The partner's checks, in the order the module comment gives; nothing is read before they pass. */
async function authorizePartner(ctx: EnclaveContext, p: CollabPartnerParams): Promise<Omit<AuthorizedPartner, "reader">> {
  const checked = await checkCollaboration(p.collaboration);
  // The plan reads only the approved SQL (no data): worked out while the peer is attested.
  const plan = Promise.all([namedColumns(checked.sql, checked.policy), rowFilters(checked.sql, checked.policy)]);
  plan.catch(() => {});
  const { terms } = checked;
  if (p.party >= terms.parties.length || p.party === terms.computeParty) {
    throw new CollabJobError("COLLAB_TERMS_INVALID", `party ${p.party} is not a partner of this collaboration (the compute party ${terms.computeParty} runs collab-compute)`);
  }
  if (p.runId < 1 || p.runId > terms.maxRuns) throw new CollabJobError("COLLAB_TERMS_INVALID", `run ${p.runId} is outside the terms' 1..${terms.maxRuns} runs`);
  await checkQueryUnderPolicy(checked);
  const compute = await verifyPeer(checked, p.compute, terms.computeParty);
  const opened = await openDatasets(ctx, checked, p.party, p.datasets);
  // With endpoints of its own, the party's enclave proves the approvals stand before it reads a row.
  const proven = opened.chainView ? await proveCollabState(opened.chainView, checked, p.runId, p.collaboration.partyNames) : undefined;
  return { checked, compute, descriptors: opened.datasets, plan, ...(proven ? { provedAt: proven.provedAt } : {}) };
}

/** What execute hands to anchor (the runtime passes both the same params object). */
const anchorInputs = new WeakMap<CollabPartnerParams, { inputs: { name: string; digest: Hex }[]; termsHash: Hex }>();

/** The JobAnchor a partner signs: the terms hash, its datasets' digests, its receipt and its provenance. */
export function partnerAnchorDigest(b: CollabBinding, termsHash: Hex, inputs: { name: string; digest: Hex }[], receiptDigest: Hex, provenanceDigest: Hex): Hex {
  return anchorDigest(anchorDomain(collaborationsDomainName, b.chainId, b.contract), {
    kind: "collab-partner",
    jobId: b.collaborationId,
    approvedDigest: termsHash,
    inputDigest: digestSet(inputs),
    outputDigest: digestSet([{ name: "receipt", digest: receiptDigest }]),
    provenanceDigest,
  });
}
