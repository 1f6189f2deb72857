import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { startFakeVllm, type FakeVllm } from '../helpers/fake-vllm.js';
import { startGlimpse, type RunningGlimpse } from '../helpers/glimpse.js';

/**
 * A zip whose one entry, [Content_Types].xml, claims to unpack to `claimed` bytes: the shape of
 * a zip bomb as far as its central directory tells.
 */
function zipClaiming(claimed: number): Buffer {
  const name = Buffer.from('[Content_Types].xml');
  const body = deflateRawSync(Buffer.alloc(1024));
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(body.length, 18);
  local.writeUInt32LE(claimed, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(body.length, 20);
  central.writeUInt32LE(claimed, 24);
  central.writeUInt16LE(name.length, 28);
  const cdOffset = local.length + name.length + body.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + name.length, 12);
  end.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([local, name, body, central, name, end]);
}

describe('Office documents: converted to PDF with LibreOffice, refused clearly without it', () => {
  let dir: string;
  let docx: Buffer;
  let vllm: FakeVllm;
  let g: RunningGlimpse;
  let without: RunningGlimpse;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'glimpse-office-test-'));
    // A real .docx, written by LibreOffice itself from plain text.
    writeFileSync(join(dir, 'memo.txt'), 'Quarterly memo\n\nRevenue went up.\n');
    execFileSync(
      'soffice',
      [
        '--headless',
        `-env:UserInstallation=file://${dir}/profile`,
        '--convert-to',
        'docx',
        '--outdir',
        dir,
        join(dir, 'memo.txt'),
      ],
      { stdio: 'ignore' },
    );
    docx = readFileSync(join(dir, 'memo.docx'));
    vllm = await startFakeVllm();
    g = await startGlimpse({ engine: 'upstream', upstream: vllm.url, upstreamModel: vllm.model });
    without = await startGlimpse({
      engine: 'upstream',
      upstream: vllm.url,
      upstreamModel: vllm.model,
      documents: { libreOffice: join(dir, 'no-such-soffice') },
    });
  });
  after(async () => {
    await g.close();
    await without.close();
    await vllm.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ask = (server: RunningGlimpse, file: Buffer, filename: string) =>
    fetch(server.url + '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          {
            role: 'user',
            content: [
              {
                type: 'file',
                file: { filename, file_data: `data:application/octet-stream;base64,${file.toString('base64')}` },
              },
              { type: 'text', text: 'summarize' },
            ],
          },
        ],
      }),
    });

  test('a .docx becomes its pages', async () => {
    const res = await ask(g, docx, 'memo.docx');
    assert.equal(res.status, 200, await res.text());
    const parts = vllm.requests.filter((r) => r.method === 'POST').at(-1)!.body.messages[0].content as Array<{
      type: string;
      text?: string;
    }>;
    assert.deepEqual(
      parts.map((p) => p.text ?? p.type),
      ['Page 1 of 1', 'image_url', 'summarize'],
    );
  });

  test('a zip bomb is refused from its central directory, before LibreOffice opens it', async () => {
    const res = await ask(g, zipClaiming(0xfffffff0), 'bomb.pptx');
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, 'document_too_large');
    assert.equal((await ask(g, docx, 'memo.docx')).status, 200);
  });

  test('without LibreOffice: 415 naming the Debian package to install', async () => {
    const res = await ask(without, docx, 'memo.docx');
    assert.equal(res.status, 415);
    const body = await res.json();
    assert.equal(body.error.code, 'document_converter_missing');
    assert.match(body.error.message, /libreoffice-impress/);
  });
});
