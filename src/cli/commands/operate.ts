/**
 * `cloister operate register` and `cloister operate <grant-id> --statement <file> --grant <file|cid>`: the
 * operator's side of an owner grant on a running network. The operator runs its own enclave on this machine
 * (sealed state in --enclave-dir), has it attested and registered by the network's attestation service for
 * its account (--account <i> or CLOISTER_PRIVATE_KEY), and sends it the statement with the owner's grant
 * document; the enclave checks everything and the use is recorded on chain. On a devnet the enclave is the
 * simulated TEE of the devnet's sim PKI (--sim-pki, else <devnet dir>/sim-tee).
 */
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { encodeEvidence } from "../../attestation/evidence-codec.ts";
import { casHttpClient } from "../../cas/http-client.ts";
import { startEnclave, type EnclaveClient } from "../../enclave/client.ts";
import { toHex } from "viem";
import { generateHpkeKeyPair } from "../../crypto/hpke.ts";
import { createNetRelay } from "../../host/net-relay.ts";
import { recordPendingUses, runOperateJob } from "../../host/operate-job.ts";
import { statementShape } from "../../protocol/operate.ts";
import { openGrantRead } from "../../sdk/grants.ts";
import { readInputFile } from "../args.ts";
import { UsageError } from "../errors.ts";
import { networkParseOptions, signerParseOptions } from "../network-options.ts";
import { printJson } from "../output.ts";
import { operatePart, statementOfSignedEnvelope } from "../../protocol/provenance.ts";
import { operateUsage } from "../usage.ts";
import { grantIdHex, loadGrantDocument, parseGrantId } from "../grant-inputs.ts";
import { connectForGrants } from "./grant.ts";

type Connected = Awaited<ReturnType<typeof connectForGrants>>;

/** Starts the operator's enclave and registers it for the signing account; returns it with its evidence CID. */
async function registeredEnclave(network: Connected, flags: { "enclave-dir"?: string; "sim-pki"?: string; cas?: string }): Promise<{ enclave: EnclaveClient; evidenceCid: string; expiry: bigint; enclaveDir: string }> {
  const file = network.named.file;
  const operator = network.writer.account.address;
  const enclaveDir = flags["enclave-dir"] ?? (file ? join(dirname(file.path), "operators", operator, "enclave") : undefined);
  if (!enclaveDir) throw new UsageError("give --enclave-dir <dir>: where this operator's enclave keeps its sealed keys");
  const pkiDir = flags["sim-pki"] ?? (file ? join(dirname(file.path), "sim-tee") : undefined);
  if (!pkiDir) throw new UsageError("give --sim-pki <dir> (a devnet's sim-tee directory): the only attestation provider built is the simulated TEE");
  const casUrl = flags.cas ?? file?.endpoints.cas;
  if (!casUrl) throw new UsageError("give --cas <url>: the network's attestation service registers the enclave");
  // The relay carries the enclave's own TLS to a dataset with a pinned certificate; the destination is the owner's
  // (sealed in the grant), often on a private network, so private destinations are allowed.
  const enclave = await startEnclave({ dataDir: enclaveDir, attestation: { provider: "sim", pkiDir }, relay: createNetRelay({ privateDestinations: "allow" }) });
  try {
    const cas = casHttpClient(casUrl);
    const nonce = await cas.challenge();
    const { evidence } = await enclave.attest({ freshness: nonce, operator });
    const id = enclave.identity;
    const keys = { signer: id.signer, hpkePublicKey: id.hpkePublicKey, provenanceKey: id.provenanceKey, tlsKey: id.tlsKey };
    const evidenceCid = await network.store.put(encodeEvidence(evidence, keys));
    const registered = await cas.register({ ...keys, operator, evidenceCid, nonce });
    return { enclave, evidenceCid, expiry: registered.expiry, enclaveDir };
  } catch (error) {
    await enclave.close();
    throw error;
  }
}

function isRead(statement: string): boolean {
  try {
    return statementShape(statement).operation === "read";
  } catch {
    return false; // the enclave refuses it with the reason
  }
}

export async function operateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      statement: { type: "string" },
      grant: { type: "string" },
      "enclave-dir": { type: "string" },
      json: { type: "boolean", default: false },
      ...networkParseOptions,
      ...signerParseOptions,
    },
  });
  if (positionals.length !== 1) throw new UsageError(`operate takes 'register' or exactly one grant id\n\n${operateUsage}`);
  const register = positionals[0] === "register";
  const id = register ? undefined : parseGrantId(positionals[0]);
  if (!register && !values.statement) throw new UsageError(`operate needs --statement <file>: the exact statement the grant allows\n\n${operateUsage}`);
  if (!register && !values.grant) throw new UsageError(`operate needs --grant <file | CID>: the grant document the owner's 'cloister grant create' wrote\n\n${operateUsage}`);
  const statement = values.statement ? new TextDecoder().decode(await readInputFile(values.statement, "statement")) : "";
  const network = await connectForGrants(values, true);
  let enclave: EnclaveClient | undefined;
  try {
    const document = id === undefined ? undefined : await loadGrantDocument(values.grant!, network.store);
    if (document && BigInt(document.grantId) !== id) throw new UsageError(`the grant document is for grant ${grantIdHex(BigInt(document.grantId))}, not ${grantIdHex(id!)}`);
    if (document && document.grants.toLowerCase() !== network.grants.toLowerCase()) {
      throw new UsageError(`the grant document names Grants contract ${document.grants}, and this network's is ${network.grants}: it is for another network`);
    }
    const started = await registeredEnclave(network, values);
    enclave = started.enclave;
    const signer = enclave.identity.signer;
    if (!document) {
      if (values.json) printJson({ operator: network.writer.account.address, enclave: signer, hpkePublicKey: enclave.identity.hpkePublicKey, evidenceCid: started.evidenceCid, expiry: started.expiry.toString() });
      else process.stdout.write(`enclave ${signer} registered for operator ${network.writer.account.address} until ${new Date(Number(started.expiry) * 1000).toISOString()}\n  owners can now seal datasets to it: 'cloister grant create --operator ${network.writer.account.address} ...'\n`);
      return 0;
    }
    // Uses this operator applied but did not get recorded (it stopped in between) are recorded first: until then the grant's next use is refused.
    const pendingDir = join(started.enclaveDir, "..", "pending-uses");
    const recordedPending = await recordPendingUses(network.writer, network.grants, pendingDir);
    if (recordedPending.length > 0 && !values.json) process.stderr.write(`recorded ${recordedPending.length} use(s) applied earlier but not yet on chain: ${recordedPending.join(", ")}\n`);
    const provider = { request: (args: { method: string; params?: readonly unknown[] | object }) => network.writer.request(args as never) as Promise<unknown> };
    // A read's rows come back sealed to a key made here for this run: only this command can open them.
    const readKeys = isRead(statement) ? await generateHpkeKeyPair() : undefined;
    const run = await runOperateJob({
      enclave, provider, registry: network.deployment.registry, document, statement, evidenceCid: started.evidenceCid, store: network.store, writer: network.writer, pendingDir,
      ...(readKeys ? { resultKey: toHex(readKeys.publicKey) } : {}),
    });
    const rows = readKeys && run.result ? await openGrantRead(run.result, readKeys.privateKey, document, run.receipt.runId) : undefined;
    readKeys?.privateKey.fill(0);
    const provedAt = operatePart(statementOfSignedEnvelope(run.provenance))?.provedAt;
    const blockChosenBy = provedAt?.chosenBy === "owner-endpoints" ? "a quorum of the owner's chain endpoints" : "this node (the owner sealed no chain endpoints)";
    if (values.json) {
      printJson({
        grantId: grantIdHex(id!),
        runId: run.receipt.runId,
        use: run.receipt.use,
        operation: run.receipt.operation,
        table: run.receipt.table,
        rowsAffected: run.receipt.rowsAffected,
        enclave: signer,
        provenance: run.provenanceCid,
        provenanceDigest: run.provenanceDigest,
        receipt: run.receiptCid,
        transactionHash: run.transactionHash,
        gasUsed: String(run.gasUsed),
        recorded: true,
        provedAt: provedAt ?? null,
        ...(rows ? { rows } : {}),
      });
    } else {
      process.stdout.write(
        [
          `use ${run.receipt.use} of grant ${grantIdHex(id!)}: ${run.receipt.operation} on ${run.receipt.table}, ${run.receipt.rowsAffected} row(s) affected`,
          `  run ${run.receipt.runId} by enclave ${signer}`,
          `  grant proved at block ${provedAt?.number ?? "?"}, chosen by ${blockChosenBy}`,
          `  provenance ${run.provenanceCid}; recorded on chain in ${run.transactionHash} (gas ${run.gasUsed})`,
          ...(rows ? ["", rows.columns.join("\t"), ...rows.rows.map((r) => r.map((c) => c ?? "NULL").join("\t"))] : []),
          "",
        ].join("\n"),
      );
    }
    return 0;
  } finally {
    await enclave?.close();
    await network.close();
  }
}

