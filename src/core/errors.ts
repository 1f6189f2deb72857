/**
 * Errors are values with a stable code. The code decides the HTTP status and the OpenAI error
 * type, once, here; each wire format turns a GlimpseError into its own error shape.
 */

export const ERROR_CODES = {
  // 400: the request is malformed
  invalid_json: { status: 400, type: 'invalid_request_error' },
  invalid_request: { status: 400, type: 'invalid_request_error' },
  invalid_file: { status: 400, type: 'invalid_request_error' },
  batch_too_large: { status: 400, type: 'invalid_request_error' },
  missing_prompt: { status: 400, type: 'invalid_request_error' },
  missing_image: { status: 400, type: 'invalid_request_error' },
  empty_messages: { status: 400, type: 'invalid_request_error' },
  invalid_max_tokens: { status: 400, type: 'invalid_request_error' },
  invalid_temperature: { status: 400, type: 'invalid_request_error' },
  invalid_top_p: { status: 400, type: 'invalid_request_error' },
  invalid_image_url: { status: 400, type: 'invalid_request_error' },
  invalid_image_budget: { status: 400, type: 'invalid_request_error' },
  image_url_forbidden: { status: 400, type: 'invalid_request_error' },
  invalid_webhook_url: { status: 400, type: 'invalid_request_error' },
  webhook_url_forbidden: { status: 400, type: 'invalid_request_error' },
  tools_unsupported: { status: 400, type: 'invalid_request_error' },
  logprobs_unsupported: { status: 400, type: 'invalid_request_error' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error' },
  previous_response_not_found: { status: 400, type: 'invalid_request_error' },
  item_reference_not_found: { status: 400, type: 'invalid_request_error' },
  // the moderation service (--moderation-url) flagged the request, or the answer once complete
  content_flagged: { status: 400, type: 'invalid_request_error' },
  // 401/403/404
  unauthorized: { status: 401, type: 'authentication_error' },
  invalid_token: { status: 401, type: 'authentication_error' },
  token_expired: { status: 401, type: 'authentication_error' },
  forbidden: { status: 403, type: 'permission_error' },
  model_not_found: { status: 404, type: 'invalid_request_error' },
  not_found: { status: 404, type: 'invalid_request_error' },
  response_not_found: { status: 404, type: 'invalid_request_error' },
  // 499 (as nginx logs it): the client closed the connection; nobody reads this answer
  client_closed: { status: 499, type: 'invalid_request_error' },
  // 413/415/422: the image
  payload_too_large: { status: 413, type: 'invalid_request_error' },
  file_too_large: { status: 413, type: 'invalid_request_error' },
  image_too_large: { status: 413, type: 'invalid_request_error' },
  image_too_many_pixels: { status: 422, type: 'invalid_request_error' },
  image_aspect_ratio_too_large: { status: 422, type: 'invalid_request_error' },
  image_decode_timeout: { status: 422, type: 'invalid_request_error' },
  too_many_images: { status: 422, type: 'invalid_request_error' },
  base64_too_long: { status: 413, type: 'invalid_request_error' },
  invalid_image: { status: 422, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  image_fetch_failed: { status: 422, type: 'invalid_request_error' },
  // documents and videos: the same statuses as images (413 size, 415 cannot take it, 422 unreadable or past a limit)
  document_too_large: { status: 413, type: 'invalid_request_error' },
  invalid_document: { status: 422, type: 'invalid_request_error' },
  document_encrypted: { status: 422, type: 'invalid_request_error' },
  too_many_pages: { status: 422, type: 'invalid_request_error' },
  document_page_too_large: { status: 422, type: 'invalid_request_error' },
  document_render_timeout: { status: 422, type: 'invalid_request_error' },
  document_conversion_failed: { status: 422, type: 'invalid_request_error' },
  document_converter_missing: { status: 415, type: 'invalid_request_error' },
  video_too_large: { status: 413, type: 'invalid_request_error' },
  invalid_video: { status: 422, type: 'invalid_request_error' },
  video_too_long: { status: 422, type: 'invalid_request_error' },
  video_resolution_too_large: { status: 422, type: 'invalid_request_error' },
  video_decode_timeout: { status: 422, type: 'invalid_request_error' },
  video_decoder_missing: { status: 415, type: 'invalid_request_error' },
  // 429: too much
  queue_full: { status: 429, type: 'rate_limit_error' },
  rate_limited: { status: 429, type: 'rate_limit_error' },
  quota_exceeded: { status: 429, type: 'rate_limit_error' },
  // 5xx: our side
  queue_timeout: { status: 503, type: 'server_error' },
  model_loading: { status: 503, type: 'server_error' },
  shutting_down: { status: 503, type: 'server_error' },
  engine_unavailable: { status: 503, type: 'server_error' },
  jobs_unavailable: { status: 503, type: 'server_error' },
  responses_store_unavailable: { status: 503, type: 'server_error' },
  // the moderation service could not answer and moderation.failMode is closed
  moderation_unavailable: { status: 503, type: 'server_error' },
  storage_full: { status: 507, type: 'server_error' },
  job_failed: { status: 500, type: 'server_error' },
  upstream_unavailable: { status: 502, type: 'server_error' },
  upstream_error: { status: 502, type: 'server_error' },
  empty_completion: { status: 502, type: 'server_error' },
  request_timeout: { status: 504, type: 'server_error' },
  idle_timeout: { status: 504, type: 'server_error' },
  engine_error: { status: 500, type: 'server_error' },
  internal_error: { status: 500, type: 'server_error' },
} as const satisfies Record<string, { status: number; type: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class GlimpseError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  /** Seconds after which a retry may succeed; each wire format says it its own way (HTTP's Retry-After, WebSocket's retry_after). */
  readonly retryAfterSeconds: number | undefined;
  /** Extra headers the HTTP layer should send (e.g. x-ratelimit-*); Retry-After comes from retryAfterSeconds. */
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { param?: string | null; retryAfterSeconds?: number; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GlimpseError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.type = ERROR_CODES[code].type;
    this.param = opts.param ?? null;
    // Callers that still pass Retry-After as a header (engines, scheduler) have it read here, once.
    const { 'Retry-After': retryHeader, ...headers } = opts.headers ?? {};
    const retry = opts.retryAfterSeconds ?? (retryHeader === undefined ? undefined : Number(retryHeader));
    this.retryAfterSeconds = retry !== undefined && Number.isFinite(retry) && retry > 0 ? retry : undefined;
    this.headers = headers;
  }
}

export function isGlimpseError(err: unknown): err is GlimpseError {
  return err instanceof GlimpseError;
}

/** Anything thrown becomes a GlimpseError; unknown errors become internal_error without leaking internals. */
export function toGlimpseError(err: unknown): GlimpseError {
  if (err instanceof GlimpseError) return err;
  if (err && typeof err === 'object' && 'name' in err && (err as Error).name === 'AbortError') {
    return new GlimpseError('request_timeout', 'The request was cancelled before it finished.');
  }
  return new GlimpseError('internal_error', 'Internal server error.', { cause: err });
}
