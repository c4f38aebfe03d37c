import { AckPolicy, connect, DeliverPolicy, nanos, type Consumer, type NatsConnection } from "nats";
import type { NatsDescriptor } from "./descriptor.ts";
import { ConnectorError } from "./errors.ts";
import { redactUrl, safeCause, urlSecrets } from "./redact.ts";
import { batchSizeOf, unsupportedNetwork } from "./reader.ts";
import type { Cell, Column, ColumnType, RawRead, ReadOptions, Row } from "./types.ts";

/**
 * A NATS JetStream stream, one JSON object per message, one row each.
 *
 * A read is a snapshot: it reads messages up to the stream's last sequence at
 * the moment the read starts, through an ephemeral pull consumer, so a
 * producer that keeps publishing cannot make it endless. The cursor is the
 * stream sequence: `after` N starts at N + 1, and the summary's cursor is the
 * last sequence read.
 *
 * Columns come from the first message: its keys in order, typed by JSON
 * value (number: float, string: text, boolean: boolean, object or array:
 * json). A later message may omit keys (null) but not add keys or change a
 * column's JSON type; such a message fails the read with CONNECTOR_BAD_ROW.
 */

export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";
const FETCH_EXPIRES_MS = 1_000;
/** The server removes a consumer left behind by a crashed read after this long. */
const INACTIVE_MS = 60_000;

function jsonType(value: unknown): ColumnType | undefined {
  if (value === null) return undefined;
  if (typeof value === "number") return "float";
  if (typeof value === "string") return "text";
  if (typeof value === "boolean") return "boolean";
  return "json";
}

export function natsError(error: unknown, url: string, stream: string): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const cause = safeCause(error, urlSecrets(url));
  const code = String((error as { code?: unknown }).code ?? "");
  const shown = redactUrl(url);
  const details = { url: shown, stream, ...(code ? { driverCode: code } : {}) };
  if (/stream not found/i.test(cause.message)) return new ConnectorError("CONNECTOR_UNKNOWN_TABLE", `NATS at ${shown} has no JetStream stream "${stream}"; check the descriptor's stream`, { details, cause });
  if (code === "AUTHORIZATION_VIOLATION" || /authorization/i.test(cause.message)) return new ConnectorError("CONNECTOR_AUTH_FAILED", `NATS at ${shown} refused the credentials; check the url's user and password`, { details, cause });
  if (code === "503" || /jetstream not enabled/i.test(cause.message)) return new ConnectorError("CONNECTOR_UNREACHABLE", `NATS at ${shown} has no JetStream; start nats-server with -js`, { details, cause });
  return new ConnectorError("CONNECTOR_QUERY_FAILED", `NATS at ${shown} failed reading stream "${stream}": ${cause.message}`, { details, cause });
}

/** A connection for reading or writing `stream`; its errors are typed and never quote the url's password. */
export async function connectNats(url: string, stream: string): Promise<NatsConnection> {
  try {
    return await connect({ ...connectOptions(url), timeout: 10_000, reconnect: false, maxReconnectAttempts: 0 });
  } catch (error) {
    const cause = safeCause(error, urlSecrets(url));
    if (/authorization/i.test(cause.message)) throw natsError(error, url, stream);
    throw new ConnectorError("CONNECTOR_UNREACHABLE", `NATS at ${redactUrl(url)} is unreachable (${cause.message}); check that nats-server runs and the url's host and port`, { details: { url: redactUrl(url), stream }, cause });
  }
}

/** nats.js takes credentials as options, not inside the server URL. */
function connectOptions(url: string): { servers: string; user?: string; pass?: string } {
  const parsed = new URL(url);
  const user = decodeURIComponent(parsed.username);
  const pass = decodeURIComponent(parsed.password);
  parsed.username = "";
  parsed.password = "";
  return { servers: `${parsed.hostname}:${parsed.port || "4222"}`, ...(user ? { user } : {}), ...(pass ? { pass } : {}) };
}

export async function openNats(descriptor: NatsDescriptor, options: ReadOptions): Promise<RawRead> {
  if (options.network) throw unsupportedNetwork("nats");
  const url = descriptor.url ?? DEFAULT_NATS_URL;
  const batchSize = batchSizeOf(options);
  let startSeq = 1;
  if (options.after !== undefined) {
    if (!/^\d+$/.test(options.after)) throw new ConnectorError("CONNECTOR_BAD_CURSOR", `a nats cursor is a stream sequence number; pass the cursor a previous read returned`, { details: { stream: descriptor.stream } });
    startSeq = Number(options.after) + 1;
  }
  const nc = await connectNats(url, descriptor.stream);
  let consumerName: string | undefined;
  const close = async (): Promise<void> => {
    if (nc.isClosed()) return;
    if (consumerName) await nc.jetstreamManager().then((jsm) => jsm.consumers.delete(descriptor.stream, consumerName!)).catch(() => undefined);
    await nc.close().catch(() => undefined);
  };
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(descriptor.stream);
    const lastSeq = info.state.last_seq;
    // An explicit ephemeral pull consumer, not nats.js's ordered consumer: a server that refuses
    // the consumer answers at once here, where the ordered consumer retries for about 30 s.
    let consumer: Consumer | undefined;
    if (startSeq <= lastSeq) {
      const created = await jsm.consumers.add(descriptor.stream, {
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: startSeq,
        mem_storage: true,
        inactive_threshold: nanos(INACTIVE_MS),
        ...(descriptor.subject ? { filter_subject: descriptor.subject } : {}),
      });
      consumerName = created.name;
      consumer = await nc.jetstream().consumers.get(descriptor.stream, created.name);
    }

    // Columns are fixed by the first message, which must be read before the reader exists.
    const pending: { seq: number; value: Record<string, unknown> }[] = [];
    let done = consumer === undefined;
    const pull = async (): Promise<void> => {
      if (done || !consumer) return;
      const messages = await consumer.fetch({ max_messages: batchSize, expires: FETCH_EXPIRES_MS });
      let got = 0;
      for await (const m of messages) {
        got++;
        const seq = m.info.streamSequence;
        if (seq > lastSeq) {
          done = true;
          break;
        }
        let value: unknown;
        try {
          value = m.json();
        } catch {
          throw new ConnectorError("CONNECTOR_BAD_ROW", `message ${seq} of NATS stream "${descriptor.stream}" is not JSON; publish one JSON object per message`, { details: { stream: descriptor.stream, seq } });
        }
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          throw new ConnectorError("CONNECTOR_BAD_ROW", `message ${seq} of NATS stream "${descriptor.stream}" is not a JSON object; publish one object per message`, { details: { stream: descriptor.stream, seq } });
        }
        pending.push({ seq, value: value as Record<string, unknown> });
        if (seq >= lastSeq || m.info.pending === 0) {
          done = true;
          break;
        }
      }
      if (got === 0) done = true;
    };
    await pull();

    const columns: Column[] = [];
    const first = pending[0]?.value;
    if (first) {
      for (const [name, value] of Object.entries(first)) columns.push({ name, type: jsonType(value) ?? "text" });
    }
    const index = new Map(columns.map((c, i) => [c.name, i]));
    const toRow = ({ seq, value }: { seq: number; value: Record<string, unknown> }): Row => {
      const row: Cell[] = columns.map(() => null);
      for (const [name, cell] of Object.entries(value)) {
        const i = index.get(name);
        if (i === undefined) throw new ConnectorError("CONNECTOR_BAD_ROW", `message ${seq} of NATS stream "${descriptor.stream}" has key "${name}", which the first message lacks; every message must use the first message's keys`, { details: { stream: descriptor.stream, seq, key: name } });
        const type = jsonType(cell);
        if (type === undefined) continue;
        if (type !== columns[i]!.type) throw new ConnectorError("CONNECTOR_BAD_ROW", `message ${seq} of NATS stream "${descriptor.stream}": "${name}" is ${type}, the first message's is ${columns[i]!.type}`, { details: { stream: descriptor.stream, seq, key: name } });
        row[i] = type === "json" ? JSON.stringify(cell) : (cell as Cell);
      }
      return row;
    };

    let lastRead = options.after;
    async function* batches(): AsyncGenerator<readonly Row[]> {
      try {
        for (;;) {
          if (pending.length > 0) {
            const taken = pending.splice(0, pending.length);
            lastRead = String(taken[taken.length - 1]!.seq);
            yield taken.map(toRow);
          }
          if (done) break;
          await pull();
        }
      } catch (error) {
        throw natsError(error, url, descriptor.stream);
      } finally {
        await close();
      }
    }
    return { columns, cursorIndex: undefined, batches: batches(), close, streamCursor: () => lastRead };
  } catch (error) {
    await close();
    throw natsError(error, url, descriptor.stream);
  }
}
