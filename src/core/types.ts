/**
 * The two types that cross the boundary between routes and engines.
 * Every API shape parses into a GenerateRequest; every engine answers with GenerateEvents.
 */

/** Where an image came from, before the image pipeline has looked at it. */
export type ImageSource =
  | { kind: 'url'; url: string } // http(s) URL, fetched by glimpse (SSRF-guarded)
  | { kind: 'dataUrl'; url: string } // data:image/...;base64,...
  | { kind: 'base64'; data: string } // bare base64, no prefix
  | { kind: 'bytes'; data: Buffer; filename?: string }; // multipart upload

/** An image after the pipeline: sniffed, limited, decoded, oriented, resized, fingerprinted. */
export interface ResolvedImage {
  /**
   * Encoded bytes of the normalized image, for engines that send images over the network
   * (imageInput 'encoded'). Absent when the engine takes pixels: no encode is spent on it.
   */
  data?: Buffer;
  mime?: 'image/png' | 'image/jpeg' | 'image/webp';
  width: number;
  height: number;
  /**
   * The client's image, upright, before it was shrunk: grounding boxes are given in its pixels.
   * Absent for pages and frames, whose rendered size is their own.
   */
  original?: { width: number; height: number };
  /** Format sniffed from the original bytes, e.g. 'jpeg', 'png'. */
  sourceFormat: string;
  /** Hex SHA-256 of the normalized pixels (or bytes, where pixels are not decoded). */
  sha256: string;
  /** 64-bit perceptual hash as 16 hex chars, when computed. */
  phash?: string;
  /**
   * The normalized pixels themselves (8-bit RGB, row-major), for engines that take pixels
   * (imageInput 'pixels'): an in-process engine reads them directly, with no encode, no second
   * decode and no lossy round trip in between.
   */
  rgb?: { data: Buffer; width: number; height: number };
}

/** How many pixels an image may have, as OpenAI's `detail` says: low = one 512 px view; high/auto = the model's own size. */
export type ImageDetail = 'low' | 'high' | 'auto';

export type TextPart = { type: 'text'; text: string };
/**
 * The document or video a page or frame came from, one object shared by all its parts: what the
 * budget made of it, for the answer's `glimpse_media` field (the page's strip of thumbnails).
 */
export interface MediaOrigin {
  kind: 'document' | 'video';
  filename?: string;
  /** Pages rendered, or frames sampled. */
  count: number;
  /** A video's length in seconds. */
  durationSeconds?: number;
  /** Small JPEG data URLs of each page or frame, in order, when the request asked for them. */
  thumbnails?: string[];
}

export type ImagePart = {
  type: 'image';
  source: ImageSource;
  resolved?: ResolvedImage;
  detail?: ImageDetail;
  /** Set on pages and frames: the document or video they came from. */
  from?: MediaOrigin;
  /** This image's own min_pixels / max_pixels, over the request's (GenerateRequest.imageBudget). */
  budget?: ImageBudget;
};

/**
 * A document: a PDF, or an Office file (pptx, docx, xlsx, odp...) converted to PDF first. The
 * image pipeline replaces it in its message with its pages in order, each a `Page N of M` text
 * part and an image part, so no engine ever sees a document part.
 */
export type DocumentPart = { type: 'document'; source: ImageSource; filename?: string };

/** A video after the pipeline looked at it, kept whole for engines that take video (upstream pools that serve it). */
export interface ResolvedVideo {
  data: Buffer;
  /** Container type as sniffed: video/mp4, video/webm, video/quicktime, video/x-matroska. */
  mime: string;
  durationSeconds: number;
  width: number;
  height: number;
  /** Hex SHA-256 of the bytes (cache keys, routing by content). */
  sha256: string;
}

/**
 * A video (MP4, WebM, MOV, MKV). The image pipeline either keeps it, with `resolved` set, for an
 * engine that takes video, or replaces it with sampled frames, each a timestamp text part and an
 * image part.
 */
export type VideoPart = { type: 'video'; source: ImageSource; resolved?: ResolvedVideo };

export type ContentPart = TextPart | ImagePart | DocumentPart | VideoPart;

/** Per-request image size bounds (Qwen2-VL/GLM-V style min_pixels / max_pixels request extras). */
export interface ImageBudget {
  minPixels?: number;
  maxPixels?: number;
}

export type Role = 'system' | 'user' | 'assistant' | 'tool';

/** A function call the model made (OpenAI's shape; `arguments` is JSON text, as the model wrote it). */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: Role;
  content: ContentPart[];
  /** Assistant turns that called tools (conversation history). */
  toolCalls?: ToolCall[];
  /** Tool turns: the call this result answers. */
  toolCallId?: string;
}

/**
 * The variables a request gives the model's chat template: its templateArgs, plus enable_thinking
 * when the client chose (and `withThinking`, for servers told the choice another way); undefined
 * when there are none.
 */
export function templateVariables(
  req: Pick<GenerateRequest, 'thinking' | 'templateArgs'>,
  withThinking = true,
): Record<string, unknown> | undefined {
  const thinking = withThinking && req.thinking !== undefined ? { enable_thinking: req.thinking } : undefined;
  return req.templateArgs || thinking ? { ...req.templateArgs, ...thinking } : undefined;
}

/** Whether a conversation carries tool turns: calls the model made, or results of them. */
export function hasToolTurns(messages: readonly ChatMessage[]): boolean {
  return messages.some((m) => m.role === 'tool' || !!m.toolCalls?.length);
}

/**
 * Tool use and structured output, passed to engines that support them as the client gave them
 * (OpenAI's `tools`, `tool_choice`, `parallel_tool_calls`, `response_format`; shapes checked by
 * the route's schema).
 */
export interface ToolOptions {
  tools?: unknown[];
  toolChoice?: unknown;
  parallelToolCalls?: boolean;
  responseFormat?: unknown;
}

export interface SamplingParams {
  maxTokens: number;
  temperature: number;
  topP: number;
  seed?: number;
  stop: string[];
  /** Keep only the k most likely tokens (unset or 0: all). */
  topK?: number;
  /** Drop tokens less likely than minP times the most likely one (unset or 0: none). */
  minP?: number;
  /** OpenAI's penalties on tokens already generated: once for appearing (presence), per occurrence (frequency); -2..2. */
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Divides (positive) logits of tokens seen in the prompt or the answer, as vLLM and transformers do; 1 = off. */
  repetitionPenalty?: number;
}

/** The sampling settings beyond temperature and top_p, as set (absent = the engine's neutral default). */
export type ExtraSampling = Pick<
  SamplingParams,
  'topK' | 'minP' | 'presencePenalty' | 'frequencyPenalty' | 'repetitionPenalty'
>;

export interface GenerateRequest {
  /** Request id (also sent to upstreams as X-Request-Id). */
  id: string;
  /** Model the client asked for; engines map it to what they serve. */
  model: string;
  messages: ChatMessage[];
  sampling: SamplingParams;
  /**
   * Whether the model should reason ("think") before answering, where it can; absent: the model's
   * own default (GLM-4.6V thinks unless told not to).
   */
  thinking?: boolean;
  /**
   * More variables for the model's chat template (vLLM's and SGLang's chat_template_kwargs),
   * checked by the route (see checkTemplateArgs). Thinking travels in `thinking`, not here.
   */
  templateArgs?: Record<string, unknown>;
  /** Function calling and structured output (engines without them refuse: tools_unsupported). */
  toolOptions?: ToolOptions;
  /** Return each answer token's log probability, with this many alternatives (0..20). */
  logprobs?: { top: number };
  /** The caller's W3C trace context, passed on to upstream servers. */
  trace?: { traceparent: string; tracestate?: string };
  /** API key id (not the secret) of the caller, when keys are in use: used for fairness and cache scoping. */
  keyId?: string;
  /** The caller's end user, where the dialect names one (Zhipu's user_id): queued fairly apart from the key's other users. */
  endUser?: string;
  /** The caller's own pixel bounds for images, within the server's (min_pixels / max_pixels). */
  imageBudget?: ImageBudget;
  /** Make small views of each page and frame for the answer's glimpse_media (glimpse_thumbnails: true). */
  mediaThumbnails?: boolean;
}

/** Whom the scheduler's fair queue counts a request for: its key, or (where the dialect names one) the key's end user apart from its others. */
export function fairnessKey(req: Pick<GenerateRequest, 'keyId' | 'endUser'>): string | undefined {
  return req.endUser === undefined ? req.keyId : `${req.keyId ?? ''}\u0000${req.endUser}`;
}

export interface Usage {
  promptTokens: number;
  /** Every generated token, reasoning included. */
  completionTokens: number;
  /** Prompt tokens the images (pages, frames) took: the server's count, else estimated from the model's profile. */
  imageTokens?: number;
  /** Of completionTokens, those spent reasoning, where the engine knows (server-reported, or counted as it streams them). */
  reasoningTokens?: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'cancelled';

/** One answer token's log probability (of the model's raw distribution) and the most likely alternatives. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  /** UTF-8 bytes of `token` (a token can hold part of a character). */
  bytes: number[] | null;
  top: Array<{ token: string; logprob: number; bytes: number[] | null }>;
}

export type GenerateEvent =
  /** Answer text; with logprobs asked for, the log probabilities of the tokens it came from (the text may lag them by a token or two). */
  | { type: 'token'; text: string; logprobs?: TokenLogprob[] }
  | { type: 'reasoning'; text: string }
  /** A piece of a tool call: the first piece of call `index` has its id and name, later ones more `arguments` text. */
  | { type: 'tool_call'; index: number; id?: string; name?: string; arguments?: string }
  | { type: 'usage'; usage: Usage }
  | { type: 'done'; finishReason: FinishReason }
  | { type: 'error'; error: import('./errors.js').GlimpseError };

export interface ModelCard {
  id: string;
  ownedBy: string;
  /** Max context in tokens, when known. */
  contextLength?: number;
  /** The model profile it was loaded by (--model-path glm-ocr): what it is good at and its one-click tasks. */
  profile?: {
    name: string;
    description: string;
    tasks: { label: string; prompt: string }[];
    thinks: boolean;
    boxes: boolean;
    /** Longest image edge the model is sent (images.maxEdgeByModel still overrides it). */
    imageMaxEdge: number;
    /** Present when the model's processor works in this pixel grid: image sides are sent as multiples of it. */
    patchGrid?: number;
  };
}

export interface EngineInfo {
  engine: 'embedded' | 'upstream' | 'simulated';
  /** Model served by default (what /health reports). */
  model: string;
  models: ModelCard[];
  device: string;
  /** True for the simulated engine: every answer is synthetic. */
  simulated: boolean;
}

export interface EngineHealth {
  status: 'healthy' | 'loading' | 'unhealthy';
  modelLoaded: boolean;
  /** Warm-up done: /ready turns 200 only when this is true. */
  ready: boolean;
  /** Why it is not healthy, in one sentence. */
  reason?: string;
}

/** What an engine reads from a resolved image: decoded RGB pixels or encoded bytes. */
export type ImageInput = 'pixels' | 'encoded';

export interface Engine {
  /**
   * What the image pipeline hands this engine: 'pixels' (in-process engines; no encode is done) or
   * 'encoded' (engines that send images over the network; the pixels are dropped once encoded).
   * Absent means 'encoded'.
   */
  readonly imageInput?: ImageInput;
  /** True when the engine passes tools and response_format to a model that honours them. */
  readonly supportsTools?: boolean;
  /** True when the engine can give token log probabilities. */
  readonly supportsLogprobs?: boolean;
  /** Load weights / connect / warm up. Resolves when ready or failed (health() tells which). Never throws. */
  start(): Promise<void>;
  /**
   * Stream one generation. Must end with exactly one 'done' or 'error' event.
   * When `signal` aborts, stop work within one decoding step and end with done{finishReason:'cancelled'} or return.
   */
  generate(req: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateEvent>;
  info(): EngineInfo;
  health(): EngineHealth;
  /**
   * Generations this engine can run at once right now: for the pool serving `model` (engines
   * with several models), or in all without one. The scheduler admits up to this many and holds
   * the rest in its own queue, so an engine needs no queue of its own. An upstream pool answers
   * with the sum of its usable replicas' limits (set per URL, learned from /metrics, or adaptive),
   * the embedded engine with its worker count. Absent: the configured maxInFlight is the limit.
   */
  capacity?(model?: string): number;
  /**
   * Subscribe to "capacity may have grown" (a worker is free again, a replica came back, a limit
   * rose), so queued requests are admitted without waiting for a slot to free. Returns the
   * unsubscribe function.
   */
  onCapacityChange?(listener: () => void): () => void;
  /**
   * What a request's placement follows (an upstream pool: its image's fingerprint, so the replica
   * holding the image in its caches gets it); undefined: it may run anywhere.
   */
  affinityKey?(req: GenerateRequest): string | undefined;
  /**
   * The replica that holds `key` in its caches, for the pool serving `model`, and how many more
   * requests it takes now; undefined when none is known (or it is not usable). The scheduler asks
   * this to give a freed slot to a waiter whose home has room.
   */
  home?(model: string | undefined, key: string): { id: string; free: number } | undefined;
  close(): Promise<void>;
}

/**
 * The same stream with its events read through `iterate`: a wrapper (metrics, quotas) that sees
 * every event keeps the stream's own fields (queue wait) visible, as the prototype.
 */
export function withIterator<E, S extends AsyncIterable<E>>(stream: S, iterate: () => AsyncIterator<E>): S {
  return Object.assign(Object.create(stream) as object, { [Symbol.asyncIterator]: iterate }) as S;
}
