/**
 * The granted manipulation (job kind `operate`): an operator runs one
 * statement against an owner's dataset under the owner's grant.
 *
 * authorize takes the grant's scope only from the owner's EIP-712 signature
 * (dataset, operations, statement digest, operator, window, uses), and the
 * grant's live state only from the chain, proved inside the enclave at one
 * trusted block (revocation, window against the block's timestamp, uses, and
 * this enclave's own operator in the registry). It refuses anything outside
 * the grant with an EnclaveError naming the violated limit, before the
 * dataset is opened. execute applies the statement once per use (a run
 * marker in the dataset, operate-db.ts) and reports the rows it changed;
 * the anchor is Grants' EIP-712 Use over the grant, the run id and the
 * provenance digest, which consumeUse records on chain once per run.
 */
import { concatBytes, getAddress, isAddressEqual, recoverAddress, type Hex } from "viem";
import { fromHex } from "../../crypto/bytes.ts";
import { openWith, sealTo } from "../../crypto/hpke.ts";
import { sha256 } from "../../crypto/sha256.ts";
import { datasetId, grantDigest, grantId, grantsDomain, GRANT_OPERATIONS, operationsOf, statementDigest, useDigest, type GrantTerms } from "../../protocol/grants.ts";
import { grantDatasetInfo, grantedDatasetSchema, grantReadInfo, grantRunId, GrantDocumentError, normalizeTableName, statementShape, type GrantedDataset, type StatementShape } from "../../protocol/operate.ts";
import { ChainViewError } from "../chain-view/errors.ts";
import { ownerChainView } from "../chain-view/http-endpoints.ts";
import { replayEndpoint } from "../chain-view/recorded.ts";
import { EnclaveError } from "../errors.ts";
import type { EnclaveContext, JobModule } from "./job-module.ts";
import { applyGrantedStatement } from "./operate-db.ts";
import { readGrantOnChain, singleEndpointView, type GrantOnChain } from "./operate-chain.ts";
import type { OperateJobParams } from "./params.ts";

export interface AuthorizedOperation {
  terms: GrantTerms;
  dataset: GrantedDataset;
  shape: StatementShape;
  useIndex: number;
  runId: Hex;
  block: GrantOnChain["block"];
}

export const operateJob: JobModule<"operate", OperateJobParams, AuthorizedOperation> = {
  kind: "operate",
  jobId: (params) => params.binding.grantId,
  authorize: authorizeOperation,
  async execute(ctx, params, a) {
    const { binding } = params;
    const digest = statementDigest(params.statement);
    const applied = await applyGrantedStatement(a.dataset, params.statement, { grantId: binding.grantId, useIndex: a.useIndex, runId: a.runId, statementDigest: digest, expiry: a.terms.expiry }, ctx.net, a.shape.operation === "read");
    const rowsAffected = applied.affected;
    const outputs = [] as { name: string; bytes: Uint8Array }[];
    if (applied.read) {
      // The rows go to the operator the grant names, sealed to the key it sent for this run; the host sees ciphertext.
      const sealed = await sealTo(fromHex(params.resultKey!), new TextEncoder().encode(JSON.stringify(applied.read)), { info: grantReadInfo(binding, a.runId) });
      outputs.push({ name: "result", bytes: concatBytes([sealed.enc, sealed.ciphertext]) });
    }
    const receipt = {
      grantId: binding.grantId.toString(),
      runId: a.runId,
      use: a.useIndex + 1,
      statementDigest: digest,
      operation: a.shape.operation,
      table: a.shape.table,
      rowsAffected,
    };
    return {
      outputs: [{ name: "receipt", bytes: new TextEncoder().encode(JSON.stringify(receipt)) }, ...outputs],
      inputs: [{ name: "statement", digest: sha256(new TextEncoder().encode(params.statement)) }],
      resourceUse: null,
      error: null,
      kindPredicate: {
        chainId: binding.chainId.toString(),
        grants: getAddress(binding.grants),
        grantId: binding.grantId.toString(),
        runId: a.runId.toLowerCase() as Hex,
        use: a.useIndex + 1,
        owner: getAddress(a.terms.owner),
        operator: getAddress(a.terms.operator),
        dataset: { id: a.terms.dataset.toLowerCase() as Hex, table: a.shape.table },
        statement: { digest: digest.toLowerCase() as Hex, operation: a.shape.operation },
        rowsAffected,
        provedAt: { number: a.block.number.toString(), hash: a.block.hash.toLowerCase() as Hex, timestamp: a.block.timestamp.toString(), chosenBy: a.dataset.chainView ? "owner-endpoints" : "host" },
      },
    };
  },
  async anchor(ctx, params, run) {
    const { binding } = params;
    const hash = useDigest(grantsDomain(binding.chainId, binding.grants), binding.grantId, runIdOf(params), run.provenanceDigest);
    return { type: "Grants.Use", signature: await ctx.keys.account.sign({ hash }) };
  },
};

/** The run id authorize derived, by the job's params object (the runtime passes the same one to every step). */
const runIds = new WeakMap<OperateJobParams, Hex>();
function runIdOf(params: OperateJobParams): Hex {
  const id = runIds.get(params);
  if (id) return id;
  throw new EnclaveError("INTERNAL", "the operate anchor has no run id: authorize did not run for these params");
}

function refuse(code: ConstructorParameters<typeof EnclaveError>[0], message: string): never {
  throw new EnclaveError(code, message);
}

/** Every check before the dataset is opened; throws the EnclaveError naming the first limit violated. */
export async function authorizeOperation(ctx: EnclaveContext, params: OperateJobParams): Promise<AuthorizedOperation> {
  const { binding, grant } = params;
  const { terms } = grant;
  const me = ctx.keys.account.address;
  const id = `0x${binding.grantId.toString(16).padStart(64, "0")}`;

  // 1. The scope: the owner's signature over these terms, for this grant id.
  const domain = grantsDomain(binding.chainId, binding.grants);
  let signer: string;
  try {
    signer = await recoverAddress({ hash: grantDigest(domain, terms, grant.salt), signature: grant.signature });
  } catch {
    refuse("GRANT_SIGNATURE_INVALID", `the grant's signature does not recover to any signer; ask the owner for the grant document 'cloister grant create' wrote`);
  }
  if (!isAddressEqual(signer as Hex, terms.owner)) {
    refuse("GRANT_SIGNATURE_INVALID", `the grant's terms are signed by ${signer}, not by their owner ${terms.owner}: they were altered or signed for another Grants contract or chain`);
  }
  const signedId = grantId(binding.chainId, binding.grants, terms.owner, grant.salt);
  if (signedId !== binding.grantId) refuse("GRANT_SIGNATURE_INVALID", `the signed grant is grant 0x${signedId.toString(16).padStart(64, "0")}, not grant ${id}; run the operation under the grant the document names`);

  // 2. The dataset, sealed by the owner to this enclave for this grant.
  const dataset = await openDataset(ctx, params);

  // 3. The live state, proved at a trusted block.
  let chain: GrantOnChain;
  try {
    const chainId = Number(binding.chainId);
    // The owner's endpoints, when it sealed some, choose the block; otherwise the host's recorded answers do.
    const view = dataset.chainView ? ownerChainView(dataset.chainView, chainId) : singleEndpointView(chainId, replayEndpoint("host-recorded", params.chain));
    chain = await readGrantOnChain(view, { chainId, grants: binding.grants, grantId: binding.grantId, registry: dataset.registry, enclave: me });
  } catch (error) {
    if (!(error instanceof ChainViewError)) throw error;
    const fix = dataset.chainView ? "the owner's chain endpoints sealed with the dataset must answer (a majority of them, on the same block)" : "the node must send the chain answers of the same reads, at one block";
    refuse("GRANT_CHAIN_UNPROVEN", `the enclave could not prove grant ${id}'s state on chain (${error.code}: ${error.message}); ${fix}`);
  }
  const g = chain.grant;
  const now = chain.block.timestamp;
  const at = `at block ${chain.block.number}`;
  if (g.owner === "0x0000000000000000000000000000000000000000") {
    refuse("GRANT_NOT_FOUND", `grant ${id} is not on chain ${at}: the owner has not created it (or relayed its signature) on this Grants contract; ask the owner to run 'cloister grant create'`);
  }
  if (g.revoked || g.maxUses === 0) refuse("GRANT_REVOKED", `grant ${id} was revoked by its owner ${at}; no use is allowed`);
  const same =
    isAddressEqual(g.owner, terms.owner) &&
    isAddressEqual(g.operator, terms.operator) &&
    g.dataset.toLowerCase() === terms.dataset.toLowerCase() &&
    g.statementDigest.toLowerCase() === terms.statementDigest.toLowerCase() &&
    g.operations === terms.operations &&
    g.notBefore === terms.notBefore &&
    g.expiry === terms.expiry &&
    g.maxUses === terms.maxUses;
  if (!same) refuse("GRANT_TERMS_MISMATCH", `grant ${id} on chain holds other terms than the signed grant document; ask the owner for the document of the grant it created`);
  if (now < BigInt(g.notBefore)) refuse("GRANT_NOT_YET_VALID", `grant ${id} is valid from ${iso(g.notBefore)}, and the trusted block time is ${iso(now)}; run it once the window opens`);
  if (now >= BigInt(g.expiry)) refuse("GRANT_EXPIRED", `grant ${id} expired at ${iso(g.expiry)} (trusted block time ${iso(now)}); ask the owner for a new grant`);
  if (g.uses >= g.maxUses) refuse("GRANT_USED_UP", `grant ${id} allowed ${g.maxUses} use(s) and all are recorded on chain ${at}; ask the owner for a new grant`);
  const mine = chain.enclave;
  if (mine.operator === "0x0000000000000000000000000000000000000000" || mine.revoked || mine.expiry <= now) {
    refuse("GRANT_WRONG_OPERATOR", `this enclave (${me}) is not active in the registry ${dataset.registry} ${at}, so it runs for no operator; register it first`);
  }
  if (!isAddressEqual(mine.operator, terms.operator)) {
    refuse("GRANT_WRONG_OPERATOR", `grant ${id} is for operator ${terms.operator}, and this enclave runs for operator ${mine.operator}; only the grant's operator may use it`);
  }

  // 4. The statement: exactly the one granted, an operation granted, on the dataset's table.
  const digest = statementDigest(params.statement);
  if (digest.toLowerCase() !== terms.statementDigest.toLowerCase()) {
    refuse("GRANT_STATEMENT_NOT_GRANTED", `the statement's digest is ${digest}, and grant ${id} allows only the statement with digest ${terms.statementDigest}; run the exact statement the owner granted`);
  }
  let shape: StatementShape;
  try {
    shape = statementShape(params.statement);
  } catch (error) {
    if (!(error instanceof GrantDocumentError)) throw error;
    refuse("GRANT_STATEMENT_UNSUPPORTED", error.message);
  }
  if (shape.operation === "read" && params.resultKey === undefined) {
    refuse("OPERATE_RESULT_KEY_MISSING", "the statement is a read, and its rows go only to the operator: send the operator's X25519 result key with the job (cloister operate does)");
  }
  if ((terms.operations & GRANT_OPERATIONS[shape.operation]) === 0) {
    refuse("GRANT_OPERATION_NOT_GRANTED", `the statement is an ${shape.operation}, and grant ${id} allows only ${operationsOf(terms.operations).join(", ")}`);
  }
  if (datasetId(dataset.name).toLowerCase() !== terms.dataset.toLowerCase()) {
    refuse("GRANT_DATASET_NOT_GRANTED", `the dataset sealed to this enclave is "${dataset.name}", which is not the dataset grant ${id} covers; ask the owner to seal the granted dataset`);
  }
  if (normalizeTableName(dataset.table) !== shape.table) {
    refuse("GRANT_TABLE_NOT_GRANTED", `the statement changes table ${shape.table}, and grant ${id} covers table ${normalizeTableName(dataset.table)} of dataset "${dataset.name}"`);
  }
  const runId = grantRunId(binding, g.uses);
  runIds.set(params, runId);
  return { terms, dataset, shape, useIndex: g.uses, runId, block: chain.block };
}

async function openDataset(ctx: EnclaveContext, params: OperateJobParams): Promise<GrantedDataset> {
  const me = ctx.keys.account.address;
  const sealed = params.dataset;
  if (!isAddressEqual(sealed.enclave, me)) {
    refuse("GRANT_DATASET_NOT_GRANTED", `the dataset was sealed to enclave ${sealed.enclave}, not to this one (${me}); ask the owner to seal it to this enclave`);
  }
  let plain: Uint8Array;
  try {
    plain = await openWith(ctx.keys.hpke.privateKey, fromHex(sealed.enc), fromHex(sealed.ciphertext), { info: grantDatasetInfo(params.binding, me) });
  } catch {
    refuse("GRANT_DATASET_NOT_GRANTED", `the sealed dataset does not open for grant ${params.binding.grantId} in this enclave: it was sealed for another grant, contract, chain or enclave key, or altered`);
  }
  try {
    return grantedDatasetSchema.parse(JSON.parse(new TextDecoder().decode(plain)));
  } catch {
    refuse("GRANT_DATASET_NOT_GRANTED", "the sealed dataset is not a dataset document (name, table, connection, registry); ask the owner to seal it with 'cloister grant create'");
  } finally {
    plain.fill(0);
  }
}

function iso(seconds: number | bigint): string {
  return new Date(Number(seconds) * 1000).toISOString();
}
