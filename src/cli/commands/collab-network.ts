/**
 * `cloister collab create | approve | run | status | runs` against a running network (--network / --account,
 * like the task commands). `approve --node` also assigns the party's node (collab-network-run.ts), and
 * `run <id>` requests a run that the parties' node daemons carry out (src/host/collab-driver.ts).
 */
import { chmod, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { getAddress, isAddressEqual, zeroAddress, zeroHash, type Address, type Hex } from "viem";
import { manifestDigest, TASK_ROLE } from "../../attestation/manifest/index.ts";
import { readCollaboration } from "../../chain/actions/read-collaboration.ts";
import { readCollaborationTerms } from "../../chain/actions/read-collaboration-terms.ts";
import { readRuns } from "../../chain/actions/read-runs.ts";
import { withdrawApproval } from "../../chain/actions/withdraw-approval.ts";
import { onChainMeasurement } from "../../chain/actions/register-enclave.ts";
import { toHex } from "../../crypto/bytes.ts";
import { generateHpkeKeyPair } from "../../crypto/hpke.ts";
import type { JsonValue } from "../../crypto/canonical-json.ts";
import { collabDatasetsDigest, collabPolicyDigest, recipientDescriptor, recipientKeyPin } from "../../protocol/collab-run.ts";
import { epsilonFromFixed, epsilonToFixed, manifestRoleId, queryDigest, termsHash, type CollaborationTerms } from "../../protocol/collaboration.ts";
import { loadCollabFile } from "../../sdk/collab/file.ts";
import { approveAsParty, createOnChain, type CollabNetwork } from "../../sdk/collab/run.ts";
import { connectToNetwork } from "../../devnet/remote-client.ts";
import { assignPartyNode, requestAndAwaitRun } from "./collab-network-run.ts";
import { UsageError } from "../errors.ts";
import { connectFromFlags, networkParseOptions, resolveNetwork, signerParseOptions } from "../network-options.ts";
import { printJson } from "../output.ts";
import { collabUsage } from "../usage.ts";

export async function collabNetworkCommand(sub: string, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...networkParseOptions, ...signerParseOptions, party: { type: "string" }, file: { type: "string" }, node: { type: "string" }, key: { type: "string" }, timeout: { type: "string" }, json: { type: "boolean", default: false }, "data-dir": { type: "string" }, quiet: { type: "boolean", default: false } },
  });
  if (positionals.length !== 1) throw new UsageError(`collab ${sub} takes one ${sub === "create" ? "collaboration file" : "collaboration id"}\n\n${collabUsage}`);
  // Reading needs no key of the user's: status and runs connect with the network's default (read-only use).
  const network = sub === "status" || sub === "runs" ? await readOnly(values) : await connectFromFlags(values);
  try {
    const contract = network.deployment.collaborations;
    if (!contract) throw new UsageError("this network's deployment names no Collaborations contract (deployed by deployCloister since the clean room; restart the devnet to add it)");
    const reader = network.writer;
    if (sub === "create") return await create(positionals[0]!, values, { network, contract });
    const id = parseId(positionals[0]!);
    if (sub === "run") return await requestAndAwaitRun(id, values, { network, contract, manifest: (await resolveNetwork(values)).manifest });
    if (sub === "approve") {
      const { terms } = await readCollaborationTerms(reader, contract, id);
      const me = network.writer.account.address;
      const index = terms.parties.findIndex((p) => isAddressEqual(p.account, me));
      if (index < 0) throw new UsageError(`the signing account ${me} is not a party of collaboration ${positionals[0]}; sign as the party's account (--account i or CLOISTER_PRIVATE_KEY)`);
      if (values.party !== undefined) {
        const named = await partyIndex(values.party, values.file, terms);
        if (named !== index) throw new UsageError(`--party ${values.party} is not the signing account's party (index ${index}, ${me})`);
      }
      const net = collabNetwork(network, contract);
      const account = network.writer.account;
      if (account.type !== "local") throw new UsageError("collab approve signs with a local key: --account i or CLOISTER_PRIVATE_KEY");
      if (values.node !== undefined && values.file === undefined) throw new UsageError("--node seals the party's datasets to its node's enclave: add --file <collaboration.json> (the file it was created from)");
      // With --node, a party whose approval stands only assigns its node.
      const standing = ((await readCollaboration(reader, contract, id)).approvals >> index) & 1;
      const gasUsed = values.node !== undefined && standing ? 0n : await approveAsParty(net, { account, writer: network.writer }, id, terms, termsHash(terms));
      const assigned = values.node === undefined ? undefined : await assignPartyNode(id, index, terms, { network, contract, manifest: (await resolveNetwork(values)).manifest, node: values.node, file: values.file!, key: values.key });
      if (values.json) printJson({ collaboration: hexId(id), party: index, account: me, gasUsed, approved: true, ...(assigned ? { node: assigned.enclave, kit: assigned.kitCid } : {}) });
      else {
        process.stdout.write(`party ${index} (${me}) approved collaboration ${hexId(id)}${gasUsed ? ` (gas ${gasUsed})` : " (its approval stood)"}\n`);
        if (assigned) process.stdout.write(`its node: enclave ${assigned.enclave}; its datasets are sealed to that enclave in run kit ${assigned.kitCid}\n`);
      }
      return 0;
    }
    if (sub === "withdraw") {
      const tx = await withdrawApproval(network.writer, contract, id);
      if (values.json) printJson({ collaboration: hexId(id), account: network.writer.account.address, withdrawn: true, gasUsed: tx.gasUsed });
      else process.stdout.write(`${network.writer.account.address} withdrew its approval of collaboration ${hexId(id)} (gas ${tx.gasUsed}); no run is requested or recorded until it approves again\n`);
      return 0;
    }
    if (sub === "status") {
      const state = await readCollaboration(reader, contract, id);
      if (!state.exists) throw new UsageError(`no collaboration ${positionals[0]} on ${contract}`);
      const { terms } = await readCollaborationTerms(reader, contract, id);
      const parties = terms.parties.map((p, i) => ({ index: i, account: p.account, approved: ((state.approvals >> i) & 1) === 1, compute: i === terms.computeParty }));
      const status = {
        collaboration: hexId(id),
        approved: state.approved,
        parties,
        runs: state.runs,
        maxRuns: state.maxRuns,
        dp: state.dpBudget > 0n ? { spent: epsilonFromFixed(state.dpSpent), budget: epsilonFromFixed(state.dpBudget) } : null,
        queryDigest: terms.queryDigest,
        query: terms.queryText || `(IPFS ${terms.queryCid})`,
        policyDigest: terms.policyDigest,
        recipient: terms.recipient,
      };
      if (values.json) printJson(status);
      else {
        process.stdout.write(`collaboration ${status.collaboration}: ${status.approved ? "approved by every party" : "NOT approved by every party"}, ${status.runs} of ${status.maxRuns} runs${status.dp ? `, epsilon ${status.dp.spent} of ${status.dp.budget}` : ""}\n`);
        for (const p of parties) process.stdout.write(`  party ${p.index} ${p.account}${p.compute ? " (compute)" : ""}: ${p.approved ? "approved" : "not approved"}\n`);
        process.stdout.write(`  query ${status.queryDigest}: ${status.query}\n  recipient ${status.recipient}\n`);
      }
      return 0;
    }
    if (sub === "runs") {
      const runs = await readRuns(reader, contract, id);
      const list = runs.map((r) => ({ run: r.runId, enclave: r.enclave, rowsDelivered: r.rowsDelivered, rowsSuppressed: r.rowsSuppressed, epsilonSpent: epsilonFromFixed(r.epsilonSpent), resultDigest: r.resultDigest, provenanceDigest: r.provenanceDigest, transactionHash: r.transactionHash }));
      if (values.json) printJson({ collaboration: hexId(id), runs: list });
      else for (const r of list) process.stdout.write(`run ${r.run}: ${r.rowsDelivered} rows delivered, ${r.rowsSuppressed} suppressed, epsilon ${r.epsilonSpent}, enclave ${r.enclave}, tx ${r.transactionHash}\n`);
      return 0;
    }
    throw new UsageError(`unknown collab command '${sub}'\n\n${collabUsage}`);
  } finally {
    await network.close();
  }
}

function collabNetwork(network: Awaited<ReturnType<typeof connectFromFlags>>, contract: Address): Pick<CollabNetwork, "chainId" | "contract" | "reader"> {
  return { chainId: BigInt(network.deployment.chainId), contract, reader: network.writer };
}

/**
 * Creates the file's collaboration: each party's `account` from the file; every enclave checked against the
 * network's manifest (its task role); the compute party's enclave pinned to the manifest's first measurement
 * (the contract checks it); operators unpinned. A party recipient gets a fresh X25519 key, written next to
 * the file (keep it: it opens the results).
 */
async function create(path: string, values: { json?: boolean } & Parameters<typeof resolveNetwork>[0], c: { network: Awaited<ReturnType<typeof connectFromFlags>>; contract: Address }): Promise<number> {
  const loaded = await loadCollabFile(path);
  const { manifest } = await resolveNetwork(values);
  const missing = loaded.file.parties.filter((p) => !p.account).map((p) => p.name);
  if (missing.length) throw new UsageError(`on a running network every party needs its "account" (the address that approves) in the file: missing for ${missing.join(", ")}`);
  const role = manifest.roles[TASK_ROLE];
  const measurement = role?.packages.flatMap((p) => manifest.packages[p]?.measurements ?? [])[0];
  if (!measurement) throw new UsageError(`the network's manifest names no measurement for role "${TASK_ROLE}": the compute enclave cannot be pinned`);
  let recipientPin: Hex;
  let keyFile: string | undefined;
  if ("party" in loaded.file.recipient) {
    const key = await generateHpkeKeyPair();
    keyFile = `${path}.${loaded.file.recipient.party}.recipient-key`;
    await writeFile(keyFile, `${toHex(key.privateKey)}\n`, { mode: 0o600 });
    await chmod(keyFile, 0o600);
    recipientPin = recipientKeyPin(key.publicKey);
  } else recipientPin = `0x${loaded.file.recipient.pin.toLowerCase()}`;
  const terms: CollaborationTerms = {
    parties: loaded.file.parties.map((p, i) => ({
      account: getAddress(p.account!),
      operator: zeroAddress,
      measurement: i === loaded.computeIndex ? onChainMeasurement(`0x${measurement.replace(/^0x/, "")}`) : zeroHash,
      manifestDigest: manifestDigest(manifest),
      manifestRole: manifestRoleId(TASK_ROLE),
      datasetsDigest: collabDatasetsDigest(p),
    })),
    computeParty: loaded.computeIndex,
    queryDigest: queryDigest(loaded.file.query),
    queryText: loaded.file.query,
    queryCid: "",
    policyDigest: collabPolicyDigest(loaded.file.policy as JsonValue),
    maxRuns: loaded.file.maxRuns ?? 10,
    dpBudget: loaded.policy.dp ? epsilonToFixed(loaded.policy.dp.budget) : 0n,
    recipient: "party" in loaded.file.recipient ? `party:${loaded.file.recipient.party}` : recipientDescriptor(loaded.file.recipient),
    recipientPin,
    allowSimulated: loaded.file.allowSimulated ?? true,
  };
  const { collaborationId, gasUsed } = await createOnChain(collabNetwork(c.network, c.contract), c.network.writer, terms);
  if (values.json) printJson({ collaboration: hexId(collaborationId), termsHash: termsHash(terms), gasUsed, ...(keyFile ? { recipientKeyFile: keyFile } : {}) });
  else process.stdout.write(`collaboration ${hexId(collaborationId)} created (gas ${gasUsed})${keyFile ? `; the recipient's key is in ${keyFile}` : ""}\nevery party approves it with: cloister collab approve ${hexId(collaborationId)} --network <dir> --account <its account>\n`);
  return 0;
}

async function readOnly(values: Parameters<typeof resolveNetwork>[0]) {
  const n = await resolveNetwork(values);
  return connectToNetwork({ rpcUrl: n.rpcUrl, ...(n.wsUrl ? { wsUrl: n.wsUrl } : {}), ipfsUrl: n.ipfsUrl, deployment: n.deployment, manifest: n.manifest });
}

/**
 * The party `--party` names: its index, its account, or its name in the collaboration file (`--file`), whose
 * datasets must then be the ones the terms on chain name for it.
 */
async function partyIndex(party: string, file: string | undefined, terms: CollaborationTerms): Promise<number> {
  if (/^\d+$/.test(party)) return Number(party);
  if (/^0x[0-9a-fA-F]{40}$/.test(party)) return terms.parties.findIndex((p) => isAddressEqual(p.account, party as Address));
  if (!file) throw new UsageError(`--party ${party}: a party's name is known from the collaboration file: add --file <collaboration.json> (or give its index or account)`);
  const loaded = await loadCollabFile(file);
  const i = loaded.file.parties.findIndex((p) => p.name === party);
  if (i < 0) throw new UsageError(`--party ${party} is not a party of ${file} (${loaded.file.parties.map((p) => p.name).join(", ")})`);
  if (collabDatasetsDigest(loaded.file.parties[i]!) !== terms.parties[i]?.datasetsDigest) {
    throw new UsageError(`${party}'s datasets in ${file} are not the ones this collaboration's terms name: it was created from another file`);
  }
  return i;
}

function parseId(text: string): bigint {
  if (!/^(0x[0-9a-fA-F]{1,64}|\d+)$/.test(text)) throw new UsageError(`'${text}' is not a collaboration id (0x and up to 64 hex digits, as 'collab create' prints it)`);
  return BigInt(text);
}

export function hexId(id: bigint): string {
  return `0x${id.toString(16).padStart(64, "0")}`;
}
