import { CloisterError } from "../../util/base-error.ts";

/**
 * What can go wrong reading or writing a dataset. Messages say what to fix;
 * neither messages nor details ever carry a password (see redact.ts): a
 * connection URL appears only in its redacted form.
 */
export type ConnectorErrorCode =
  | "CONNECTOR_BAD_DESCRIPTOR"
  | "CONNECTOR_UNREACHABLE"
  | "CONNECTOR_AUTH_FAILED"
  | "CONNECTOR_UNKNOWN_TABLE"
  | "CONNECTOR_FILE_NOT_FOUND"
  | "CONNECTOR_FILE_CHANGED"
  | "CONNECTOR_CURSOR_COLUMN_MISSING"
  | "CONNECTOR_BAD_CURSOR"
  | "CONNECTOR_QUERY_FAILED"
  | "CONNECTOR_BAD_ROW"
  | "CONNECTOR_BAD_DESTINATION"
  | "CONNECTOR_NOT_FINISHED";

export class ConnectorError extends CloisterError<ConnectorErrorCode> {}
