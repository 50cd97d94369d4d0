/**
 * One line of text for any failure, for logs, stored `last_error`s and a tool's stderr: the error's
 * message (its name when the message is empty), followed by its causes (`a: b: c`), on one line, with
 * secrets masked. Every part of the service and every tool uses this one function.
 */

/** How deep `cause` chains are followed: enough for fetch → undici → socket, bounded for cycles. */
const MAX_CAUSES = 4;

/**
 * Credentials that may sit in an error's text without the caller knowing them: a URL's user info
 * (`https://user:pass@host`), a token in a query string, an `Authorization` header value.
 */
const CREDENTIAL_PATTERNS: [RegExp, string][] = [
  [/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1[redacted]@'],
  [/([?&](?:access_token|token|password|secret|sig)=)[^&#\s]+/gi, '$1[redacted]'],
  [/(\bauthorization:?\s*(?:token|bearer|basic)?\s+)[^\s,;]+/gi, '$1[redacted]'],
];

/** The text of one error, without its causes. Duck-typed: errors from another realm (jest's VM, a worker) are not `instanceof Error`. */
function ownText(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { message, name, errors } = error as { message?: unknown; name?: unknown; errors?: unknown };
    if (typeof message === 'string' && message !== '') return message;
    // Node's AggregateError (happy eyeballs: one connect error per address) has an empty message.
    if (Array.isArray(errors) && errors.length > 0) return [...new Set(errors.map(ownText))].join('; ');
    if (typeof name === 'string' && name !== '') return name;
  }
  return String(error);
}

/**
 * `error` as one line: message, then each cause not already part of the text, separated by `: `;
 * newlines collapsed; every string of `secrets` (4 characters or more) and any credential the text
 * carries in a URL, a query string or an Authorization header replaced by `[redacted]`.
 */
export function errorText(error: unknown, secrets: readonly string[] = []): string {
  let text = ownText(error);
  let current: unknown = error;
  for (let depth = 0; depth < MAX_CAUSES; depth++) {
    const cause = typeof current === 'object' && current !== null ? (current as { cause?: unknown }).cause : undefined;
    if (cause === undefined || cause === null || cause === current) break;
    const causeText = ownText(cause);
    if (causeText !== '' && !text.includes(causeText)) text += `: ${causeText}`;
    current = cause;
  }
  text = text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  for (const secret of secrets) {
    if (secret.length >= 4) text = text.split(secret).join('[redacted]');
  }
  for (const [pattern, replacement] of CREDENTIAL_PATTERNS) text = text.replace(pattern, replacement);
  return text;
}
