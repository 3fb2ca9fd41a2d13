// Redfish over HTTP(S): which socket errors and HTTP statuses are which PowerError.
import {
  PowerAuthError,
  PowerBmcError,
  PowerTimeoutError,
  PowerUnreachableError,
  type PowerError,
} from './errors';

// Node's codes for a certificate that does not verify (tls.TLSSocket.authorizationError and the
// hostname check).
const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** A socket-level failure of one request, as a PowerError. `where` is `origin: METHOD path`. */
export function networkError(where: string, err: unknown): PowerError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const detail = err instanceof Error ? err.message : String(err);
  if (TLS_TRUST_CODES.has(code))
    return new PowerAuthError(
      `${where}: the BMC's TLS certificate is not trusted (${code}: ${detail}); give its CA bundle or set verify_tls: false`,
      { cause: err },
    );
  if (UNREACHABLE_CODES.has(code))
    return new PowerUnreachableError(`${where}: BMC unreachable (${code})`, { cause: err });
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS'))
    return new PowerBmcError(`${where}: TLS handshake failed (${code}: ${detail})`, false, { cause: err });
  return new PowerUnreachableError(`${where}: ${code || detail}`, { cause: err });
}

/** How far a request got before the deadline of the driver call passed. */
export type RequestPhase = 'connect' | 'tls' | 'reply';

const STALLED: Record<RequestPhase, string> = {
  connect: 'could not be connected to',
  tls: 'accepted the connection but did not complete the TLS handshake',
  reply: 'did not answer',
};

/** A BMC that did not get through a request within the budget of the whole driver call. */
export function timeoutError(where: string, timeoutMs: number, phase: RequestPhase): PowerError {
  return new PowerTimeoutError(`${where}: the BMC ${STALLED[phase]} within ${timeoutMs} ms`);
}

/** An HTTP error status, with the Redfish error message when the body carries one. */
export function statusError(where: string, status: number, body: unknown): PowerError {
  const said = redfishMessage(body);
  const message = `${where}: HTTP ${status}${said ? `: ${said}` : ''}`;
  if (status === 401 || status === 403)
    return new PowerAuthError(`${message} (check the BMC username and password)`);
  // Busy or failing BMCs answer 429 and 5xx; another try later may well succeed.
  return new PowerBmcError(message, status === 408 || status === 429 || status >= 500);
}

function redfishMessage(body: unknown): string | undefined {
  const error = (body as { error?: { message?: unknown; '@Message.ExtendedInfo'?: unknown } } | null)?.error;
  const info = error?.['@Message.ExtendedInfo'];
  const first: unknown = Array.isArray(info) ? info[0] : undefined;
  const detail = (first as { Message?: unknown } | undefined)?.Message;
  const text = typeof detail === 'string' ? detail : error?.message;
  return typeof text === 'string' ? text.slice(0, 300) : undefined;
}
