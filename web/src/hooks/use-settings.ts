/** The reader's settings: loaded from and saved to storage, and applied to the page (language, title, theme). */
import { useCallback, useEffect, useLayoutEffect, useMemo, useState } from 'preact/hooks';
import { detectLang, translator, type Lang } from '../i18n';
import { loadSettings, saveSettings, type Settings } from '../store';

export function useSettings() {
  const [settings, setSettings] = useState<Settings>(loadSettings);
  const lang: Lang =
    settings.lang ?? detectLang(navigator.languages?.length ? navigator.languages : [navigator.language]);
  const t = useMemo(() => translator(lang), [lang]);
  const update = useCallback((patch: Partial<Settings>) => setSettings((s) => ({ ...s, ...patch })), []);

  // Saved at once. Layout effects run inside the render's commit, so what is on screen is already
  // saved: a reload right after a click cannot lose it (a plain effect may still be waiting for the next frame).
  useLayoutEffect(() => saveSettings(settings), [settings]);

  useEffect(() => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = `glimpse · ${t('appTagline')}`;
  }, [lang, t]);
  useEffect(() => {
    if (settings.theme === 'system') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = settings.theme;
  }, [settings.theme]);

  return { settings, setSettings, update, lang, t };
}
