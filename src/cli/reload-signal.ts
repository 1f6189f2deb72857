/**
 * SIGHUP (`systemctl reload`, `kill -HUP`) re-reads the API keys file. Node's default for SIGHUP
 * ends the process, so a reload sent while glimpse is still starting (loading its modules, the
 * model, binding the port) would kill it. `holdReloads()` runs first thing in each entry
 * (bin/glimpse.js, a cluster worker's) and takes SIGHUP from then on; `onReload()` sets what a
 * reload does once there is a server to reload, and does it once at once if one came before.
 */
let action: (() => void) | undefined;
let pending = false;

const onSighup = (): void => {
  if (action) action();
  else pending = true;
};

/** Take SIGHUP now; a reload that comes before `onReload` is kept for it. */
export function holdReloads(): void {
  if (!process.listeners('SIGHUP').includes(onSighup)) process.on('SIGHUP', onSighup);
}

/** What a reload does from now on (one that came while held runs now). */
export function onReload(fn: () => void): void {
  holdReloads();
  action = fn;
  if (pending) {
    pending = false;
    fn();
  }
}
