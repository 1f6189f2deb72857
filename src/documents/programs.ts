/** Finding the external programs documents and videos need (LibreOffice, ffmpeg), once per name. */
import { access, constants } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';

const found = new Map<string, Promise<string | undefined>>();

/** The full path of `name` (a path, or a program looked for on PATH), or undefined when there is none. */
export function findProgram(name: string): Promise<string | undefined> {
  let hit = found.get(name);
  if (!hit) {
    hit = locate(name);
    found.set(name, hit);
  }
  return hit;
}

async function locate(name: string): Promise<string | undefined> {
  const candidates =
    isAbsolute(name) || name.includes('/')
      ? [name]
      : (process.env.PATH ?? '')
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => join(dir, name));
  for (const path of candidates) {
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}
