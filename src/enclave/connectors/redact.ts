/**
 * Credential hygiene for connection URLs. A descriptor's url may carry a
 * password; it must reach the driver and nothing else: errors, details and
 * logs see `redactUrl(url)`, and a driver's own error is re-wrapped with
 * every occurrence of the password scrubbed before it becomes a `cause`.
 */

/** The URL with its password replaced by `***` (unparseable input is hidden whole). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<unparseable url>";
  }
}

/** The secrets of a URL worth scrubbing from free text: its password, raw and decoded. */
export function urlSecrets(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const { password } = new URL(url);
    if (!password) return [];
    const decoded = decodeURIComponent(password);
    return [...new Set([password, decoded, url])].filter((s) => s.length > 0);
  } catch {
    return [url];
  }
}

export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join("***");
  return out;
}

/**
 * A driver error made safe to keep as a cause: a fresh Error with the scrubbed
 * message and the driver's code, without the driver's own cause chain or
 * fields (some drivers copy connection options onto their errors).
 */
export function safeCause(error: unknown, secrets: readonly string[]): Error {
  const message = error instanceof Error ? error.message : String(error);
  const safe = new Error(scrub(message, secrets));
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" || typeof code === "number") Object.assign(safe, { code: String(code) });
  safe.name = error instanceof Error ? error.name : "Error";
  safe.stack = `${safe.name}: ${safe.message}`;
  return safe;
}
