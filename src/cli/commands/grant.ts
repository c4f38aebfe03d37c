/**
 * `cloister grant create|revoke|list|uses`: the data owner's side of owner
 * grants on a running network (--network <devnet dir> --account <i>, or
 * CLOISTER_PRIVATE_KEY). create signs the grant (EIP-712), seals the dataset
 * to each enclave of the operator that the owner's policy accepts, records
 * the grant on chain and writes the grant document the operator needs (also
 * put on IPFS). list and uses read the chain: what was granted, to whom, and
 * every use with its run id, enclave and provenance digest.
 */
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { getAddress, isAddress, type Address } from "viem";
import { policyForRole, TASK_ROLE } from "../../attestation/manifest/index.ts";
import { listGrants, listGrantUses, readGrantRevocation } from "../../chain/actions/read-grant-logs.ts";
import { readGrant } from "../../chain/actions/read-grant.ts";
import { revokeGrant } from "../../chain/actions/revoke-grant.ts";
import { connectToNetwork, type RemoteNetwork } from "../../devnet/remote-client.ts";
import { operationsOf } from "../../protocol/grants.ts";
import { listVerifiedEnclaves } from "../../sdk/enclaves.ts";
import { createGrantDocument, readUseRecord } from "../../sdk/grants.ts";
import { readInputFile } from "../args.ts";
import { UsageError } from "../errors.ts";
import { networkParseOptions, resolveNetwork, signerParseOptions, type NetworkFlags } from "../network-options.ts";
import { printJson } from "../output.ts";
import { signerKey } from "../signer.ts";
import { grantUsage } from "../usage.ts";
import { markGrantRevoked } from "../../enclave/jobs/operate-db.ts";
import { datasetByIdFromFile, datasetFromFile, grantIdHex, parseGrantId, parseTimeOrDuration } from "../grant-inputs.ts";

const iso = (s: number | bigint) => new Date(Number(s) * 1000).toISOString();

/** The running network the flags name, signing as --account / CLOISTER_PRIVATE_KEY (`signer` false: the devnet's requester key is fine for reads). */
export async function connectForGrants(flags: NetworkFlags & { account?: string }, signer: boolean): Promise<RemoteNetwork & { grants: Address; manifest: Awaited<ReturnType<typeof resolveNetwork>>["manifest"]; named: Awaited<ReturnType<typeof resolveNetwork>> }> {
  const named = await resolveNetwork(flags);
  const privateKey = signer || flags.account !== undefined || process.env.CLOISTER_PRIVATE_KEY ? signerKey(flags.account, named.file) : undefined;
  const network = await connectToNetwork({ rpcUrl: named.rpcUrl, wsUrl: named.wsUrl, ipfsUrl: named.ipfsUrl, deployment: named.deployment, manifest: named.manifest, ...(privateKey ? { privateKey } : {}) });
  const grants = network.deployment.grants;
  if (!grants) {
    await network.close();
    throw new UsageError("this network's deployment names no Grants contract (it was deployed before grants were): start a new devnet ('cloister devnet up --dir <new dir>')");
  }
  return { ...network, grants, manifest: named.manifest, named };
}

function address(value: string | undefined, flag: string): Address | undefined {
  if (value === undefined) return undefined;
  if (!isAddress(value, { strict: false })) throw new UsageError(`${flag} takes a 0x address of 20 bytes, got '${value}'`);
  return getAddress(value);
}

export async function grantCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "create":
      return create(rest);
    case "revoke":
      return revoke(rest);
    case "list":
      return list(rest);
    case "uses":
      return uses(rest);
    default:
      throw new UsageError(`unknown grant command '${sub ?? ""}'\n\n${grantUsage}`);
  }
}

async function create(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dataset: { type: "string" },
      datasets: { type: "string" },
      ops: { type: "string" },
      statement: { type: "string" },
      purpose: { type: "string" },
      expires: { type: "string" },
      "not-before": { type: "string" },
      uses: { type: "string" },
      operator: { type: "string" },
      out: { type: "string" },
      json: { type: "boolean", default: false },
      ...networkParseOptions,
      ...signerParseOptions,
    },
  });
  for (const flag of ["dataset", "ops", "statement", "purpose", "expires", "uses", "operator"] as const) {
    if (values[flag] === undefined) throw new UsageError(`grant create needs --${flag}\n\n${grantUsage}`);
  }
  const operator = address(values.operator, "--operator")!;
  const maxUses = Number(values.uses);
  if (!Number.isInteger(maxUses) || maxUses < 1 || maxUses > 2 ** 32 - 1) throw new UsageError(`--uses takes a whole number of uses from 1, got '${values.uses}'`);
  const operations = values.ops!.split(",").map((s) => s.trim()).filter(Boolean);
  const statement = new TextDecoder().decode(await readInputFile(values.statement!, "statement"));
  const network = await connectForGrants(values, true);
  try {
    const now = Number((await network.writer.getBlock()).timestamp);
    const notBefore = values["not-before"] ? parseTimeOrDuration(values["not-before"], "--not-before", now) : now;
    const expiry = parseTimeOrDuration(values.expires!, "--expires", now);
    if (expiry <= Math.max(now, notBefore)) throw new UsageError(`--expires must be after the grant's start and the chain's time (${iso(Math.max(now, notBefore))})`);
    const dataset = await datasetFromFile(values.dataset!, values.datasets, network.deployment.registry);
    const policy = policyForRole(network.manifest, TASK_ROLE);
    const listing = await listVerifiedEnclaves({ reader: network.writer, registry: network.deployment.registry, fromBlock: network.deployment.deployBlock, store: network.store, policy });
    const enclaves = listing.verified.filter((e) => e.operator.toLowerCase() === operator.toLowerCase());
    if (enclaves.length === 0) {
      throw new UsageError(
        `operator ${operator} has no enclave registered that your policy manifest accepts, so the dataset could be sealed to none: the operator runs 'cloister operate register' first (${listing.rejected.length} enclave(s) rejected)`,
      );
    }
    const created = await createGrantDocument(network.writer, { grants: network.grants, operator, dataset, operations, statement, purpose: values.purpose!, notBefore, expiry, maxUses, enclaves });
    const out = values.out ?? `grant-${grantIdHex(created.grantId).slice(2, 14)}.json`;
    const text = `${JSON.stringify(created.document, null, 2)}\n`;
    await writeFile(out, text, { mode: 0o644 });
    const cid = await network.store.put(new TextEncoder().encode(text));
    if (values.json) {
      printJson({
        grantId: grantIdHex(created.grantId),
        owner: network.writer.account.address,
        operator,
        dataset: dataset.name,
        operations,
        notBefore: iso(notBefore),
        expiry: iso(expiry),
        maxUses,
        enclaves: enclaves.map((e) => e.signer),
        document: out,
        documentCid: cid,
        transactionHash: created.transactionHash,
        gasUsed: String(created.gasUsed),
      });
    } else {
      process.stdout.write(
        [
          `grant ${grantIdHex(created.grantId)} created (gas ${created.gasUsed})`,
          `  owner ${network.writer.account.address} → operator ${operator}`,
          `  dataset "${dataset.name}" (table ${dataset.table}), ${operations.join(", ")}, ${maxUses} use(s), ${iso(notBefore)} to ${iso(expiry)}`,
          `  dataset sealed to ${enclaves.length} enclave(s): ${enclaves.map((e) => e.signer).join(", ")}`,
          `  grant document: ${out} (IPFS ${cid}); give it to the operator: 'cloister operate ${grantIdHex(created.grantId)} --statement <file> --grant ${cid}'`,
          "",
        ].join("\n"),
      );
    }
    return 0;
  } finally {
    await network.close();
  }
}

async function revoke(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { datasets: { type: "string" }, json: { type: "boolean", default: false }, ...networkParseOptions, ...signerParseOptions } });
  if (positionals.length !== 1) throw new UsageError(`grant revoke takes exactly one grant id\n\n${grantUsage}`);
  const id = parseGrantId(positionals[0]);
  const network = await connectForGrants(values, true);
  try {
    const state = await readGrant(network.writer, network.grants, id);
    if (!state.exists) throw new UsageError(`grant ${grantIdHex(id)} does not exist on this network's Grants contract; 'cloister grant list' shows yours`);
    if (state.revoked) throw new UsageError(`grant ${grantIdHex(id)} is already revoked`);
    if (state.owner.toLowerCase() !== network.writer.account.address.toLowerCase()) {
      throw new UsageError(`grant ${grantIdHex(id)} belongs to ${state.owner}; only its owner may revoke it (you sign as ${network.writer.account.address})`);
    }
    // Also in the dataset itself, when the owner's datasets file names it: then even a node that proves the grant
    // at a block from before the revocation is refused, inside the statement's transaction.
    const dataset = await datasetByIdFromFile(state.dataset, values.datasets, network.deployment.registry);
    const tx = await revokeGrant(network.writer, network.grants, id);
    if (dataset) await markGrantRevoked(dataset, id);
    if (values.json) printJson({ grantId: grantIdHex(id), revoked: true, uses: state.uses, markedInDataset: dataset?.name ?? null, transactionHash: tx.hash, gasUsed: String(tx.gasUsed) });
    else {
      process.stdout.write(`grant ${grantIdHex(id)} revoked after ${state.uses} of ${state.maxUses} use(s) (gas ${tx.gasUsed}); every later use is refused\n`);
      process.stdout.write(dataset ? `  also marked revoked in dataset "${dataset.name}", which the enclave checks in the statement's own transaction\n` : "  not marked in the dataset itself: no entry of your datasets file (--datasets) is this grant's dataset\n");
    }
    return 0;
  } finally {
    await network.close();
  }
}

async function list(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { owner: { type: "string" }, operator: { type: "string" }, json: { type: "boolean", default: false }, ...networkParseOptions, ...signerParseOptions } });
  const network = await connectForGrants(values, false);
  try {
    let owner = address(values.owner, "--owner");
    const operator = address(values.operator, "--operator");
    if (!owner && !operator) {
      if (values.account === undefined && !process.env.CLOISTER_PRIVATE_KEY) throw new UsageError("grant list needs --owner <address>, --operator <address>, or a signer (--account <i>) whose grants to list");
      owner = network.writer.account.address;
    }
    const logs = await listGrants(network.writer, network.grants, { ...(owner ? { owner } : {}), ...(operator ? { operator } : {}) }, network.deployment.deployBlock);
    const rows = await Promise.all(
      logs.map(async (log) => {
        const state = await readGrant(network.writer, network.grants, log.grantId);
        return {
          grantId: grantIdHex(log.grantId),
          owner: log.terms.owner,
          operator: log.terms.operator,
          dataset: log.terms.dataset,
          operations: operationsOf(log.terms.operations),
          statementDigest: log.terms.statementDigest,
          purpose: log.terms.purpose,
          notBefore: iso(log.terms.notBefore),
          expiry: iso(log.terms.expiry),
          maxUses: log.terms.maxUses,
          uses: state.uses,
          revoked: state.revoked,
          createdIn: log.transactionHash,
        };
      }),
    );
    if (values.json) printJson({ owner: owner ?? null, operator: operator ?? null, grants: rows });
    else if (rows.length === 0) process.stdout.write(`no grants${owner ? ` by ${owner}` : ""}${operator ? ` to ${operator}` : ""}\n`);
    else {
      for (const r of rows) {
        process.stdout.write(
          `${r.grantId}  ${r.revoked ? "REVOKED" : `${r.uses}/${r.maxUses} used`}  ${r.operations.join(",")}  until ${r.expiry}\n    owner ${r.owner} → operator ${r.operator}\n    purpose: ${r.purpose}\n`,
        );
      }
    }
    return 0;
  } finally {
    await network.close();
  }
}

async function uses(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: "boolean", default: false }, ...networkParseOptions, ...signerParseOptions } });
  if (positionals.length !== 1) throw new UsageError(`grant uses takes exactly one grant id\n\n${grantUsage}`);
  const id = parseGrantId(positionals[0]);
  const network = await connectForGrants(values, false);
  try {
    const state = await readGrant(network.writer, network.grants, id);
    if (!state.exists) throw new UsageError(`grant ${grantIdHex(id)} does not exist on this network's Grants contract; 'cloister grant list' shows the grants`);
    const [logs, revocation] = await Promise.all([listGrantUses(network.writer, network.grants, id, network.deployment.deployBlock), readGrantRevocation(network.writer, network.grants, id, network.deployment.deployBlock)]);
    const rows = await Promise.all(
      logs.map(async (u) => {
        const record = await readUseRecord(network.store, u.provenanceDigest);
        return {
          use: u.use,
          runId: u.runId,
          enclave: u.enclave,
          provenanceDigest: u.provenanceDigest,
          provenance: record.provenanceCid,
          transactionHash: u.transactionHash,
          block: u.blockNumber.toString(),
          ...(record.operate
            ? { operation: record.operate.statement.operation, table: record.operate.dataset.table, rowsAffected: record.operate.rowsAffected, statementDigest: record.operate.statement.digest, finishedOn: record.finishedOn }
            : { recordMissing: record.missing }),
        };
      }),
    );
    if (values.json) {
      printJson({ grantId: grantIdHex(id), owner: state.owner, operator: state.operator, maxUses: state.maxUses, uses: rows, revoked: state.revoked, revokedIn: revocation?.transactionHash ?? null });
    } else {
      process.stdout.write(`grant ${grantIdHex(id)}: ${state.uses} of ${state.maxUses} use(s)${state.revoked ? ", REVOKED" : ""}\n`);
      for (const r of rows) {
        const what = "operation" in r ? `${r.operation} on ${r.table}, ${r.rowsAffected} row(s), finished ${r.finishedOn}` : `record ${r.recordMissing}`;
        process.stdout.write(`  use ${r.use}: ${what}\n    run ${r.runId} by enclave ${r.enclave}\n    provenance ${r.provenance} (digest ${r.provenanceDigest})\n    transaction ${r.transactionHash} (block ${r.block})\n`);
      }
    }
    return 0;
  } finally {
    await network.close();
  }
}
