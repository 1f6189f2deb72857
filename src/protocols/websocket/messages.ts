/** The WebSocket protocol's messages (docs/websocket.md), both ways. */
import type { FinishReason } from '../../core/index.js';
import type { BoxOut } from '../boxes.js';
import type { openAIUsage } from '../openai-chat/encode.js';

/** Messages the server sends. */
export type WsServerMessage =
  | { type: 'queued'; id: string; position: number }
  | { type: 'start'; id: string; model: string; queue_wait_ms: number; cache?: string }
  | { type: 'reasoning'; id: string; text: string }
  | { type: 'token'; id: string; text: string }
  | {
      type: 'done';
      id: string;
      finish_reason: FinishReason;
      usage?: ReturnType<typeof openAIUsage>;
      glimpse_boxes?: BoxOut[];
    }
  | { type: 'error'; id: string | null; error: { code: string; message: string; status: number; retry_after?: number } }
  | { type: 'pong' };

export interface WsRequestMessage {
  type: 'request';
  id?: unknown;
  prompt?: unknown;
  image?: unknown;
  system?: unknown;
  model?: unknown;
  max_new_tokens?: unknown;
  max_tokens?: unknown;
  temperature?: unknown;
  top_p?: unknown;
  thinking?: unknown;
}
