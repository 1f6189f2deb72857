/**
 * What the page knows about the server: its limits for the page (ui config), the models it
 * serves, whether it needs an API key, and its health, polled so "server down" shows in the
 * header before anyone presses Send.
 */
import { useCallback, useEffect, useState } from 'preact/hooks';
import type { Dispatch, StateUpdater } from 'preact/hooks';
import {
  DEFAULT_UI_CONFIG,
  HttpFailure,
  getHealth,
  getUiConfig,
  listModels,
  type Health,
  type ModelEntry,
  type UiConfig,
} from '../client';
import type { Settings } from '../store';

export type ServerState = 'unknown' | 'up' | 'loading' | 'unhealthy' | 'down';

/** `setSettings` is told the models when they arrive, so a model the server no longer has is replaced by its first. */
export function useServer(apiKey: string, setSettings: Dispatch<StateUpdater<Settings>>) {
  const [models, setModels] = useState<ModelEntry[]>([]);
  const [server, setServer] = useState<ServerState>('unknown');
  const [health, setHealthInfo] = useState<Health | null>(null);
  const [uiConfig, setUiConfig] = useState<UiConfig>(DEFAULT_UI_CONFIG);
  const [needApiKey, setNeedApiKey] = useState(false);

  useEffect(() => {
    void getUiConfig().then(setUiConfig);
  }, []);

  const refreshModels = useCallback(
    async (key: string) => {
      try {
        const list = await listModels(key || undefined);
        setModels(list);
        setNeedApiKey(false);
        setSettings((s) =>
          s.model && list.some((m) => m.id === s.model) ? s : { ...s, model: list[0]?.id ?? s.model },
        );
      } catch (e) {
        if (e instanceof HttpFailure && e.failure.kind === 'unauthorized') {
          setNeedApiKey(true);
          setServer('up');
        }
      }
    },
    [setSettings],
  );

  useEffect(() => {
    void refreshModels(apiKey);
  }, [apiKey, refreshModels]);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout>;
    const poll = async () => {
      const h = await getHealth();
      if (stopped) return;
      if (h) setHealthInfo(h);
      setServer((prev) => {
        const next: ServerState = !h
          ? 'down'
          : h.status === 'unhealthy'
            ? 'unhealthy'
            : h.model_loaded === false || h.status === 'loading'
              ? 'loading'
              : 'up';
        if (prev === 'down' && next !== 'down') void refreshModels(apiKey);
        return next;
      });
      // Poll faster while the model loads or the server is away, so the page notices the moment it is usable.
      timer = setTimeout(poll, h && h.status === 'healthy' ? 10_000 : 2_000);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [refreshModels, apiKey]);

  return { uiConfig, models, server, setServer, health, needApiKey, setNeedApiKey };
}
