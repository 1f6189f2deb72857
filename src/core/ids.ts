import { randomFillSync } from 'node:crypto';

// Ids come from one pool of random bytes refilled 4 KiB at a time: one call into the CSPRNG per
// hundreds of ids instead of one per id (randomBytes per call showed in profiles under load).
// Still unguessable, which ids that name stored responses need.
const pool = Buffer.alloc(4096);
let offset = pool.length;

/** `bytes` random bytes as lower-case hex. */
export function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}
