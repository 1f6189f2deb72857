// The page's reading of glimpse_media, run in node: entries checked, then given to the PDF and video
// attachments they describe, in the order the conversation sent them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverMedia, withRendered } from '../../web/src/media.ts';
import type { Attachment } from '../../web/src/images.ts';
import type { Message } from '../../web/src/store.ts';

const att = (id: string, kind?: 'document' | 'video'): Attachment => ({
  id,
  name: id,
  dataUrl: 'data:x;base64,AA==',
  mime: 'x',
  width: 0,
  height: 0,
  bytes: 1,
  originalWidth: 0,
  originalHeight: 0,
  originalBytes: 1,
  ...(kind ? { kind } : {}),
});

test('glimpse_media entries: checked, and only JPEG data URLs kept as thumbnails', () => {
  assert.equal(serverMedia('nope'), undefined);
  assert.equal(serverMedia([{ type: 'document', width: 1, height: 1 }]), undefined, 'no page count');
  assert.equal(serverMedia([{ type: 'audio', frames: 1, width: 1, height: 1 }]), undefined);
  assert.deepEqual(
    serverMedia([
      {
        type: 'video',
        frames: 2,
        fps: 3,
        width: 336,
        height: 196,
        thumbnails: ['data:image/jpeg;base64,AA==', 'javascript:alert(1)', 7],
      },
    ]),
    [{ type: 'video', count: 2, fps: 3, width: 336, height: 196, thumbnails: ['data:image/jpeg;base64,AA=='] }],
  );
});

test('entries go to the PDF and video attachments in order, each only to one of its kind', () => {
  const messages: Message[] = [
    { id: 'u1', role: 'user', text: 'a', images: [att('photo'), att('a.pdf', 'document')] },
    { id: 'a1', role: 'assistant', model: 'm', content: 'x', reasoning: '', status: 'done' },
    // A video the server passed on whole has no entry: the PDF after it takes the next one.
    { id: 'u2', role: 'user', text: 'b', images: [att('clip.mp4', 'video'), att('b.pdf', 'document')] },
  ];
  const entries = serverMedia([
    { type: 'document', pages: 3, width: 644, height: 840 },
    { type: 'document', pages: 1, width: 840, height: 644 },
  ])!;
  const out = withRendered(messages, entries);
  const images = out.flatMap((m) => (m.role === 'user' ? m.images : []));
  assert.deepEqual(
    images.map((a) => [a.name, a.rendered?.count]),
    [
      ['photo', undefined],
      ['a.pdf', 3],
      ['clip.mp4', undefined],
      ['b.pdf', 1],
    ],
  );
  assert.equal(out[1], messages[1], 'other messages are kept as they are');
});
