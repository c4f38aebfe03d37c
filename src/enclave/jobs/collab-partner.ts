/**
 * `collab-partner`: one party's side of a clean-room run, in that party's own enclave. authorize checks the
 * collaboration (every party's signed approval of these terms, the approved SQL and policy, the SQL against
 * the output policy, so a row-level query is refused before any row is read), attests the
 * compute enclave against the manifest and measurement the terms pin for the compute party, and opens the
 * party's dataset descriptors (sealed by the party to this enclave; the credentials never reach the host).
 * execute reads the datasets through the connectors inside the enclave and seals the rows to the attested
 * compute enclave for this run only (HPKE, info binding chain, contract, collaboration, run, party and the
 * compute enclave's address). The anchor is a JobAnchor the compute enclave checks: it names the terms hash,
 * the datasets' digests, the sealed transfer and this provenance, so the compute enclave knows the rows come
 * from the attested partner.
 */
import { getAddress, type Hex } from "viem";
import { fromHex } from "../../crypto/bytes.ts";
import { anchorDigest, anchorDomain, digestSet } from "../../protocol/anchor.ts";
import { collabTransferInfo, sealCollabBlob, type CollabBinding } from "../../protocol/collab-run.ts";
import { collaborationsDomainName } from "../../protocol/collaboration.ts";
import type { CollabPartnerParams } from "./collab-params.ts";
import { encodeTransfer, readDatasets } from "./collab/datasets.ts";
import { CollabJobError, reportingRefusals } from "./collab/errors.ts";
import { checkCollaboration, checkQueryUnderPolicy, openDatasets, verifyPeer, type CheckedCollaboration } from "./collab/verify.ts";
import type { JobModule } from "./job-module.ts";

interface AuthorizedPartner {
  checked: CheckedCollaboration;
  compute: { signer: `0x${string}`; measurement: string };
  descriptors: Record<string, Record<string, unknown>>;
}

/** The name under which a party's dataset enters digest sets and provenance. */
export const datasetInputName = (party: string, dataset: string) => `${party}/${dataset}`;

export const collabPartnerJob: JobModule<"collab-partner", CollabPartnerParams, AuthorizedPartner> = {
  kind: "collab-partner",
  jobId: (p) => p.collaboration.id,
  authorize: (ctx, p) =>
    reportingRefusals(async () => {
      const checked = await checkCollaboration(p.collaboration);
      const { terms } = checked;
      if (p.party >= terms.parties.length || p.party === terms.computeParty) {
        throw new CollabJobError("COLLAB_TERMS_INVALID", `party ${p.party} is not a partner of this collaboration (the compute party ${terms.computeParty} runs collab-compute)`);
      }
      if (p.runId < 1 || p.runId > terms.maxRuns) throw new CollabJobError("COLLAB_TERMS_INVALID", `run ${p.runId} is outside the terms' 1..${terms.maxRuns} runs`);
      await checkQueryUnderPolicy(checked);
      const compute = await verifyPeer(checked, p.compute, terms.computeParty);
      const descriptors = await openDatasets(ctx, checked, p.party, p.datasets);
      return { checked, compute, descriptors };
    }),
  execute: (_ctx, p, a) =>
    reportingRefusals(async () => {
      const party = p.collaboration.partyNames[p.party]!;
      const read = await readDatasets(party, a.descriptors, p.baseDir);
      const payload = encodeTransfer(read);
      const info = collabTransferInfo(a.checked.binding, p.runId, p.party, p.compute.signer);
      const transfer = await sealCollabBlob(fromHex(p.compute.hpkePublicKey), info, payload);
      payload.fill(0);
      const inputs = read.map((d) => ({ name: datasetInputName(party, d.name), digest: d.digest as Hex }));
      anchorInputs.set(p, { inputs, termsHash: a.checked.termsHash });
      return {
        outputs: [{ name: "transfer", bytes: transfer }],
        inputs,
        resourceUse: null,
        error: null,
        kindPredicate: {
          chainId: p.collaboration.chainId.toString(),
          contract: getAddress(p.collaboration.contract),
          collaborationId: p.collaboration.id.toString(),
          runId: p.runId,
          termsHash: a.checked.termsHash.toLowerCase() as Hex,
          party: p.party,
          datasets: read.map((d) => ({ party, name: d.name, digest: d.digest.toLowerCase() as Hex, rows: d.rowCount })),
          computeEnclave: { signer: getAddress(a.compute.signer), measurement: a.compute.measurement },
        },
      };
    }),
  async anchor(ctx, p, run) {
    const a = anchorInputs.get(p);
    if (!a) throw new CollabJobError("COLLAB_TERMS_INVALID", "anchor before execute");
    const { chainId, contract, id } = p.collaboration;
    return { type: "JobAnchor", signature: await ctx.keys.account.sign({ hash: partnerAnchorDigest({ chainId, contract, collaborationId: id }, a.termsHash, a.inputs, run.outputs[0]!.digest, run.provenanceDigest) }) };
  },
};

/** What execute hands to anchor (the runtime passes both the same params object). */
const anchorInputs = new WeakMap<CollabPartnerParams, { inputs: { name: string; digest: Hex }[]; termsHash: Hex }>();

/**
 * The JobAnchor a partner signs: the terms hash, its datasets' digests, the sealed transfer and its provenance.
 * The compute enclave recomputes it from what it received and checks that it recovers the attested partner.
 */
export function partnerAnchorDigest(b: CollabBinding, termsHash: Hex, inputs: { name: string; digest: Hex }[], transferDigest: Hex, provenanceDigest: Hex): Hex {
  return anchorDigest(anchorDomain(collaborationsDomainName, b.chainId, b.contract), {
    kind: "collab-partner",
    jobId: b.collaborationId,
    approvedDigest: termsHash,
    inputDigest: digestSet(inputs),
    outputDigest: digestSet([{ name: "transfer", digest: transferDigest }]),
    provenanceDigest,
  });
}
