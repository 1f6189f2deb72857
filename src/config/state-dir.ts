import { homedir } from 'node:os';
import { join } from 'node:path';

/** The state directory: as configured, else $XDG_STATE_HOME/glimpse, else ~/.local/state/glimpse. */
export function resolveStateDir(configured: string, env: NodeJS.ProcessEnv = process.env): string {
  if (configured) return configured;
  const base =
    env.XDG_STATE_HOME && env.XDG_STATE_HOME.length ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(base, 'glimpse');
}
