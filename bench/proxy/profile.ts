/**
 * Read the .cpuprofile that `node --cpu-prof` wrote and tell where the time went: self time per
 * function and per file or package, as percent of the busy (non-idle) samples.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  top: Array<{ name: string; where: string; percent: number }>;
  byFile: Array<{ where: string; percent: number }>;
}

/** Where a script lives, short: a package name, node:internal/..., or a path under the repo. */
function place(url: string): string {
  if (!url) return '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  const src = /\/((?:src|bench|test)\/.*)$/.exec(url);
  return src ? src[1] : url.replace(/^file:\/\//, '');
}

/** Samples in the first `skipMs` (the process starting) are left out. */
export function summarizeProfile(dir: string, skipMs = 0, topN = 20): ProfileSummary {
  // One file per thread; the main thread (which serves every request) is the one with the most samples.
  type Profile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  const all = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => ({ f, p: JSON.parse(readFileSync(join(dir, f), 'utf8')) as Profile }));
  if (!all.length) throw new Error(`no .cpuprofile in ${dir} (did the process exit cleanly?)`);
  const { f: file, p: prof } = all.sort((a, b) => b.p.samples.length - a.p.samples.length)[0];
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const files = new Map<string, number>();
  let busy = 0;
  let t = 0;
  prof.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    const dt = prof.timeDeltas[i] ?? 0;
    t += dt;
    if (t < skipMs * 1000 || n.callFrame.functionName === '(idle)') return;
    busy += dt;
    const where = place(n.callFrame.url);
    const key = `${n.callFrame.functionName || '(anonymous)'}\t${n.callFrame.url ? `${where}:${n.callFrame.lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    files.set(where, (files.get(where) ?? 0) + dt);
  });
  const pctOf = (us: number) => (100 * us) / busy;
  return {
    file: join(dir, file),
    totalMs: busy / 1000,
    top: [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([k, us]) => {
        const [name, where] = k.split('\t');
        return { name: name, where: where, percent: pctOf(us) };
      }),
    byFile: [...files.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([where, us]) => ({ where, percent: pctOf(us) })),
  };
}
