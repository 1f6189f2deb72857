/** The Batches panel: upload a JSONL of requests, watch each batch's progress, download results. */
import { useCallback, useEffect, useState } from 'preact/hooks';
import {
  BatchError,
  batchProgress,
  cancelBatch,
  fileContent,
  listBatches,
  startBatch,
  type BatchSummary,
} from './batch-client';
import type { Translate } from './i18n';

const POLL_MS = 2000;
const RUNNING = new Set(['validating', 'in_progress', 'finalizing', 'cancelling']);

export function BatchesPanel(props: { t: Translate; apiKey?: string; onClose(): void }) {
  const { t, apiKey } = props;
  const [batches, setBatches] = useState<BatchSummary[]>([]);
  const [error, setError] = useState('');
  const [uploading, setUploading] = useState(false);

  const refresh = useCallback(async () => {
    try {
      setBatches(await listBatches('', apiKey));
    } catch (e) {
      setError(e instanceof BatchError ? `${e.message} (${e.code})` : String(e));
    }
  }, [apiKey]);

  // Polled while the panel is open and something is still running.
  const running = batches.some((b) => RUNNING.has(b.status));
  useEffect(() => {
    void refresh();
  }, [refresh]);
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => void refresh(), POLL_MS);
    return () => clearInterval(timer);
  }, [running, refresh]);

  const upload = async (input: HTMLInputElement) => {
    const file = input.files?.[0];
    input.value = '';
    if (!file) return;
    setError('');
    setUploading(true);
    try {
      await startBatch('', file, file.name, apiKey);
      await refresh();
    } catch (e) {
      setError(e instanceof BatchError ? `${e.message} (${e.code})` : String(e));
    } finally {
      setUploading(false);
    }
  };

  const download = async (id: string, name: string) => {
    const url = URL.createObjectURL(await fileContent('', id, apiKey));
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  return (
    <aside class="settings batches" id="batches" aria-label={t('batches')} data-testid="batches">
      <div class="settings-head">
        <h2>{t('batches')}</h2>
        <button type="button" class="ghost" onClick={props.onClose} aria-label={t('closeBatches')}>
          ×
        </button>
      </div>
      <p class="hint">{t('batchesHint')}</p>
      <div class="field">
        <label for="batch-file">{t('batchesUpload')}</label>
        <input
          id="batch-file"
          type="file"
          accept=".jsonl,application/jsonl,application/x-ndjson"
          disabled={uploading}
          onChange={(e) => void upload(e.target as HTMLInputElement)}
          data-testid="batch-file"
        />
      </div>
      {error && (
        <p class="hint warn" role="alert" data-testid="batch-error">
          {error}
        </p>
      )}
      {batches.length === 0 ? (
        <p class="hint">{t('batchesEmpty')}</p>
      ) : (
        <ul class="batch-list">
          {batches.map((b) => {
            const p = batchProgress(b);
            return (
              <li key={b.id} data-testid="batch-row" data-status={b.status}>
                <div class="batch-head">
                  <code>{b.id.slice(0, 14)}…</code> <span class="batch-status">{b.status}</span>
                </div>
                <progress max={p.total} value={p.done} aria-label={`${p.done}/${p.total}`} />
                <div class="batch-counts">
                  {p.done}/{p.total}
                  {b.request_counts.failed
                    ? ` · ${t('batchesFailed').replace('{n}', String(b.request_counts.failed))}`
                    : ''}
                </div>
                <div class="batch-actions">
                  {b.output_file_id && (
                    <button
                      type="button"
                      class="link"
                      onClick={() => void download(b.output_file_id!, `${b.id}_output.jsonl`)}
                      data-testid="batch-download"
                    >
                      {t('batchesDownload')}
                    </button>
                  )}
                  {b.error_file_id && (
                    <button
                      type="button"
                      class="link"
                      onClick={() => void download(b.error_file_id!, `${b.id}_errors.jsonl`)}
                    >
                      {t('batchesErrors')}
                    </button>
                  )}
                  {(b.status === 'in_progress' || b.status === 'validating') && (
                    <button type="button" class="link" onClick={() => void cancelBatch('', b.id, apiKey).then(refresh)}>
                      {t('batchesCancel')}
                    </button>
                  )}
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </aside>
  );
}
