/** Writing a fixture's files: JSON as the hub's exports are written (2-space indent, trailing newline). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function writeJson(dir: string, name: string, value: unknown): void {
  writeFileSync(join(dir, name), JSON.stringify(value, null, 2) + '\n');
}
