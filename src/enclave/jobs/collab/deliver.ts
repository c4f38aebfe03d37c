/**
 * Where the compute enclave sends a run's rows, named and pinned by the approved terms: the recipient party's
 * node (the rows sealed to the X25519 key whose SHA-256 the terms pin), a PostgreSQL table or an HTTPS
 * endpoint, both reached from inside the enclave through its host's relay with TLS ending in the enclave and
 * the server certificate pinned (the terms' recipientPin is its DER's SHA-256). The host cannot redirect it:
 * the destination comes from the terms, the credentials of a table sealed to this enclave.
 */
import { getAddress } from "viem";
import { canonicalJsonBytes } from "../../../crypto/canonical-json.ts";
import { fromHex, toHex } from "../../../crypto/bytes.ts";
import { sha256 } from "../../../crypto/sha256.ts";
import { collabDeliveryInfo, collabResultInfo, encodeCollabResult, openCollabBlob, recipientDescriptor, sealCollabBlob, type CollabResult } from "../../../protocol/collab-run.ts";
import { writeRows, type Column, type ColumnType, type Row } from "../../connectors/index.ts";
import type { EnclaveContext } from "../job-module.ts";
import type { CollabComputeParams } from "../collab-params.ts";
import { CollabJobError } from "./errors.ts";
import type { CheckedCollaboration } from "./verify.ts";

export type Delivery =
  | { kind: "party"; key: Uint8Array }
  | { kind: "postgres"; url: string; table: string; pin: string }
  | { kind: "https"; url: URL; pin: string };

const mismatch = (what: string, terms: string) =>
  new CollabJobError("COLLAB_RECIPIENT_PIN_MISMATCH", `${what} is not the recipient the terms name (${terms}): the result goes only to the approved recipient`);

/** Checks the delivery the host asks for against the terms, before any data is read. */
export async function resolveDelivery(ctx: EnclaveContext, checked: CheckedCollaboration, d: CollabComputeParams["delivery"]): Promise<Delivery> {
  const { recipient, recipientPin } = checked.terms;
  if (d.kind === "party") {
    const key = fromHex(d.key);
    if (!recipient.startsWith("party:") || sha256(key).toLowerCase() !== recipientPin.toLowerCase()) {
      throw new CollabJobError(
        "COLLAB_RECIPIENT_PIN_MISMATCH",
        `the recipient key given (SHA-256 ${sha256(key)}) is not the one the terms pin for ${recipient} (${recipientPin}): the result goes only to the approved recipient`,
      );
    }
    return { kind: "party", key };
  }
  if (!ctx.net) throw new CollabJobError("COLLAB_DELIVERY_FAILED", "this enclave has no network: it cannot deliver to a table or an endpoint");
  const pin = recipientPin.slice(2).toLowerCase();
  if (d.kind === "https") {
    if (!recipient.startsWith("https:https://")) throw mismatch("an HTTPS endpoint", recipient);
    return { kind: "https", url: new URL(recipient.slice("https:".length)), pin };
  }
  const plain = await openCollabBlob(ctx.keys.hpke.privateKey, collabDeliveryInfo(checked.binding), d.sealed, "the recipient table's sealed url");
  const { url, table } = JSON.parse(new TextDecoder().decode(plain)) as { url: string; table: string };
  plain.fill(0);
  if (typeof url !== "string" || typeof table !== "string" || recipientDescriptor({ postgres: url, table }) !== recipient) throw mismatch("the table given", recipient);
  return { kind: "postgres", url, table, pin };
}

/**
 * The run's output and how to deliver it: the sealed result (a party: nothing left to send; its node carries
 * it) or a receipt (a table, an endpoint: `send` writes the rows from inside). `held` marks a delivery released
 * after the record is proved: its receipt carries a fresh nonce, so two computations of one run never share a
 * result digest.
 */
export async function prepareDelivery(ctx: EnclaveContext, checked: CheckedCollaboration, runId: number, d: Delivery, result: CollabResult, held = false): Promise<{ output: Uint8Array; send: () => Promise<void> }> {
  if (d.kind === "party") return { output: await sealCollabBlob(d.key, collabResultInfo(checked.binding, runId, d.key), encodeCollabResult(result)), send: async () => {} };
  const send = async () => {
    if (d.kind === "postgres") {
      const columns = result.columns.map((name, i) => ({ name, type: columnType(result.rows.map((r) => r[i])) }));
      const rows = result.rows.map((r) => r.map((v, i) => cell(v, columns[i]!.type)));
      await writeRows({ type: "postgres", url: d.url, table: d.table, mode: "append" }, columns, [rows], { network: { net: ctx.net!, pin: { kind: "certificate", sha256: d.pin } } });
    } else {
      await postJson(ctx, d.url, d.pin, encodeCollabResult(result));
    }
  };
  const output = canonicalJsonBytes({
    delivered: checked.terms.recipient,
    collaborationId: result.collaborationId,
    runId,
    compute: getAddress(ctx.keys.account.address),
    rowsDelivered: result.rows.length,
    rowsSuppressed: result.suppressed,
    epsilonSpent: result.epsilonSpent,
    ...(held ? { nonce: toHex(crypto.getRandomValues(new Uint8Array(16))) } : {}),
  });
  return { output, send };
}

function columnType(values: readonly unknown[]): ColumnType {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.every((v) => typeof v === "boolean")) return present.length ? "boolean" : "text";
  if (present.every((v) => typeof v === "number" && Number.isInteger(v))) return "integer";
  if (present.every((v) => typeof v === "number")) return "float";
  return "text";
}

function cell(v: unknown, type: ColumnType): Row[number] {
  if (v === null || v === undefined) return null;
  if (type === "integer") return BigInt(v as number);
  if (type === "float" || type === "boolean") return v as number | boolean;
  return String(v);
}

/** POSTs the body over a pinned TLS connection from inside the enclave; a status other than 2xx fails the run. */
async function postJson(ctx: EnclaveContext, url: URL, pin: string, body: Uint8Array): Promise<void> {
  const port = url.port ? Number(url.port) : 443;
  const { socket } = await ctx.net!.connect({ host: url.hostname, port, pin: { kind: "certificate", sha256: pin }, servername: url.hostname });
  try {
    const head = `POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    socket.write(head);
    socket.end(Buffer.from(body));
    let response = "";
    for await (const chunk of socket) {
      response += String(chunk);
      if (response.length > 65_536 || response.includes("\r\n")) break;
    }
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1];
    if (!status || !status.startsWith("2")) throw new CollabJobError("COLLAB_DELIVERY_FAILED", `the recipient endpoint ${url.origin} answered ${status ? `HTTP ${status}` : "no HTTP status"}; the rows were not accepted`);
  } finally {
    socket.destroy();
  }
}

export type { Column };
