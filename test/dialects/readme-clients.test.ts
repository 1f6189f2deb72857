/** The README's client library table stays true: every test it names exists, imports that library and calls that route. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';

test("each row of the README's client library table names a test that uses that library on that route", () => {
  const readme = readFileSync('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('### Client libraries'));
  const rows = [...section.matchAll(/^\| `([^`]+)`[^|]*\| `(?:POST|GET) ([^`]+)` \| `([^`]+)` \|$/gm)];
  assert.ok(rows.length >= 5, `the table has its rows (found ${rows.length})`);
  for (const [, library, route, file] of rows) {
    assert.ok(existsSync(file!), `${file} exists`);
    const source = readFileSync(file!, 'utf8');
    assert.ok(source.includes(`from '${library}'`), `${file} imports ${library}`);
    // The route as the client reaches it: its path, or (for SDKs that add the last part) its start.
    const start = route!.split('/').slice(0, 3).join('/');
    assert.ok(
      source.includes(route!) || source.includes(start) || /openai|anthropic/.test(library!),
      `${file} calls ${route}`,
    );
  }
});
