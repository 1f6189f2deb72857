/**
 * The header: brand and server state, model choice, language, theme, clear, settings; under it,
 * what the chosen model is good at when its profile says.
 */
import type { Health, ModelEntry } from './client';
import type { ServerState } from './hooks/use-server';
import type { Lang, Translate } from './i18n';
import type { Settings } from './store';

export interface TopBarProps {
  t: Translate;
  lang: Lang;
  settings: Settings;
  update: (patch: Partial<Settings>) => void;
  models: ModelEntry[];
  server: ServerState;
  health: Health | null;
  settingsOpen: boolean;
  onToggleSettings: () => void;
  batchesOpen: boolean;
  onToggleBatches: () => void;
  onClear: () => void;
}

function serverLabel(t: Translate, server: ServerState, health: Health | null): string {
  switch (server) {
    case 'down':
      return t('serverDown');
    case 'unhealthy':
      return `${t('serverUnhealthy')}${health?.reason ? `: ${health.reason}` : ''}`;
    case 'loading':
      return t('serverLoading');
    case 'up':
      return t('serverUp');
    default:
      return '';
  }
}

export function TopBar({
  t,
  lang,
  settings,
  update,
  models,
  server,
  health,
  settingsOpen,
  onToggleSettings,
  batchesOpen,
  onToggleBatches,
  onClear,
}: TopBarProps) {
  const label = serverLabel(t, server, health);
  const themeName =
    settings.theme === 'system' ? t('themeSystem') : settings.theme === 'light' ? t('themeLight') : t('themeDark');
  // What the chosen model is good at, in plain sight under the picker (an option's tooltip alone
  // is not shown on touch screens, nor until a mouse rests on the open list).
  const about = models.find((m) => m.id === settings.model)?.description;
  return (
    <>
      <header class="topbar">
        <div class="brand">
          <svg class="logo" viewBox="0 0 32 32" aria-hidden="true">
            <rect width="32" height="32" rx="7" />
            <circle cx="16" cy="16" r="7" fill="none" stroke-width="3" />
            <circle cx="16" cy="16" r="2.5" />
          </svg>
          <span class="brand-name">glimpse</span>
          <span
            class={`server-dot server-${server}`}
            role="status"
            aria-live="polite"
            data-testid="server-state"
            title={label}
          >
            <span class="dot" aria-hidden="true" />
            <span class="server-label">{label}</span>
          </span>
          {health?.simulated && (
            <span class="simulated" title={health.note ?? ''} data-testid="simulated">
              {t('simulated')}
            </span>
          )}
        </div>
        <div class="top-actions">
          <label class="model-pick">
            <span class="sr-only">{t('model')}</span>
            <select
              aria-label={t('model')}
              aria-describedby={about ? 'model-about' : undefined}
              value={settings.model}
              onChange={(e) => update({ model: (e.target as HTMLSelectElement).value })}
              data-testid="model-select"
            >
              {models.length === 0 && <option value={settings.model}>{settings.model || t('noModels')}</option>}
              {models.map((m) => (
                <option key={m.id} value={m.id} title={m.description}>
                  {m.id}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            class="ghost"
            onClick={() => update({ lang: lang === 'en' ? 'zh' : 'en' })}
            aria-label={`${t('language')}: ${t('switchLanguage')}`}
            data-testid="lang-toggle"
            lang={lang === 'en' ? 'zh-CN' : 'en'}
          >
            <span class="btn-text">{t('switchLanguage')}</span>
            <span class="btn-icon" aria-hidden="true">
              {lang === 'en' ? '中' : 'EN'}
            </span>
          </button>
          <button
            type="button"
            class="ghost icon"
            data-testid="theme-toggle"
            aria-label={`${t('theme')}: ${themeName}`}
            title={`${t('theme')}: ${themeName}`}
            onClick={() =>
              update({ theme: settings.theme === 'system' ? 'light' : settings.theme === 'light' ? 'dark' : 'system' })
            }
          >
            {settings.theme === 'dark' ? '☾' : settings.theme === 'light' ? '☀' : '◐'}
          </button>
          <button
            type="button"
            class="ghost"
            onClick={onClear}
            data-testid="clear"
            aria-label={t('clear')}
            title={t('clear')}
          >
            <span class="btn-text">{t('clear')}</span>
            <svg class="btn-icon" viewBox="0 0 24 24" aria-hidden="true">
              <path d="M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13" />
            </svg>
          </button>
          <button
            type="button"
            class="ghost"
            aria-expanded={batchesOpen}
            aria-controls="batches"
            title={t('batches')}
            onClick={onToggleBatches}
            data-testid="batches-toggle"
          >
            <span class="btn-text">{t('batches')}</span>
            <span class="btn-icon" aria-hidden="true">
              ≡
            </span>
          </button>
          <button
            type="button"
            class="ghost"
            aria-expanded={settingsOpen}
            aria-controls="settings"
            aria-label={t('settings')}
            title={t('settings')}
            onClick={onToggleSettings}
            data-testid="settings-toggle"
          >
            <span class="btn-text">{t('settings')}</span>
            <svg class="btn-icon" viewBox="0 0 24 24" aria-hidden="true">
              <path d="M4 6h10M18 6h2M4 12h4M12 12h8M4 18h12M20 18h0" />
              <circle cx="16" cy="6" r="2" />
              <circle cx="10" cy="12" r="2" />
              <circle cx="18" cy="18" r="2" />
            </svg>
          </button>
        </div>
      </header>
      {about && (
        <p class="model-about" id="model-about" data-testid="model-description">
          {about}
        </p>
      )}
    </>
  );
}
