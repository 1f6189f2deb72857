/**
 * What a request leaves out, decided once. Every dialect's mapper (wire body → GenerateRequest)
 * takes the same RequestDefaults, built once from config and the engine when the app is built, so
 * an operator's setting (defaultMaxTokens) reaches every shape alike and no route reads the
 * engine to learn the model's name.
 */
import type { Config } from '../config/index.js';
import type { EngineInfo } from '../core/index.js';

export interface RequestDefaults {
  /** The model a request that names none is answered by (and named in its answer). */
  model: string;
  /** Tokens to generate when the client gives no max_tokens (config.defaultMaxTokens). */
  maxTokens: number;
  /**
   * Bounds a mapper checks itself on bodies no JSON schema sees (multipart /infer fields,
   * WebSocket messages); schema-validated routes have had them checked already.
   */
  maxTokensLimit: number;
  maxPromptChars: number;
}

export function requestDefaults(
  config: Pick<Config, 'defaultMaxTokens' | 'maxTokensLimit' | 'maxPromptChars'>,
  engine: Pick<EngineInfo, 'model'>,
): RequestDefaults {
  // A getter, so an engine that learns its model's name after start (upstream discovery) is followed.
  return {
    get model() {
      return engine.model;
    },
    maxTokens: config.defaultMaxTokens,
    maxTokensLimit: config.maxTokensLimit,
    maxPromptChars: config.maxPromptChars,
  };
}

/** Who asked: the request id (sent upstream as X-Request-Id) and the caller's API key id. */
export interface RequestOrigin {
  id: string;
  keyId?: string;
}
