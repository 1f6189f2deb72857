/**
 * The page's side of the Files and Batch APIs: upload a JSONL and start a batch on it, list the
 * key's batches, cancel one, fetch an output file. `base` is '' on the page (same origin).
 */
export interface BatchSummary {
  id: string;
  status: string;
  created_at: number;
  output_file_id: string | null;
  error_file_id: string | null;
  request_counts: { total: number; completed: number; failed: number };
  input_file_id: string;
}

/** A refusal as the server said it: its message and stable code. */
export class BatchError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

function headers(apiKey?: string): Record<string, string> {
  return apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
}

async function answer<T>(res: Response): Promise<T> {
  if (res.ok) return (await res.json()) as T;
  const body = (await res.json().catch(() => null)) as { error?: { message?: string; code?: string } } | null;
  throw new BatchError(body?.error?.message ?? `HTTP ${res.status}`, body?.error?.code ?? `http_${res.status}`);
}

/** Upload the file (checked line by line by the server) and create a batch for chat completions. */
export async function startBatch(base: string, file: Blob, name: string, apiKey?: string): Promise<BatchSummary> {
  const form = new FormData();
  form.append('purpose', 'batch');
  form.append('file', file, name);
  const uploaded = await answer<{ id: string }>(
    await fetch(`${base}/v1/files`, { method: 'POST', headers: headers(apiKey), body: form }),
  );
  return answer<BatchSummary>(
    await fetch(`${base}/v1/batches`, {
      method: 'POST',
      headers: { ...headers(apiKey), 'content-type': 'application/json' },
      body: JSON.stringify({
        input_file_id: uploaded.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { source: name.slice(0, 64) },
      }),
    }),
  );
}

export async function listBatches(base: string, apiKey?: string): Promise<BatchSummary[]> {
  return (
    await answer<{ data: BatchSummary[] }>(await fetch(`${base}/v1/batches?limit=20`, { headers: headers(apiKey) }))
  ).data;
}

export async function cancelBatch(base: string, id: string, apiKey?: string): Promise<BatchSummary> {
  return answer<BatchSummary>(
    await fetch(`${base}/v1/batches/${encodeURIComponent(id)}/cancel`, { method: 'POST', headers: headers(apiKey) }),
  );
}

export async function fileContent(base: string, id: string, apiKey?: string): Promise<Blob> {
  const res = await fetch(`${base}/v1/files/${encodeURIComponent(id)}/content`, { headers: headers(apiKey) });
  if (!res.ok) await answer(res);
  return res.blob();
}

/** Lines ended out of all, for the progress bar. */
export function batchProgress(b: BatchSummary): { done: number; total: number; fraction: number } {
  const done = b.request_counts.completed + b.request_counts.failed;
  const total = b.request_counts.total;
  return { done, total, fraction: total ? done / total : 0 };
}
