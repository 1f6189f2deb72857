/**
 * Model output is untrusted: it is rendered as Markdown, then sanitized. Raw HTML in the answer
 * is shown as text (never parsed), links are kept only for http(s) and mailto, images are not
 * loaded (a model could use them to leak the conversation to a URL), and DOMPurify runs last in
 * case anything slipped past the renderer.
 */
import { Marked, type Tokens } from 'marked';
import DOMPurify from 'dompurify';
import { splitBoxes, type Box } from './boxes';

export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

const SAFE_URL = /^(https?:|mailto:)/i;

export interface RenderLabels {
  copy: string;
  image: string;
}

function makeMarked(labels: RenderLabels): Marked {
  return new Marked({
    gfm: true,
    breaks: true,
    renderer: {
      html(token: Tokens.HTML | Tokens.Tag) {
        return escapeHtml(token.text);
      },
      image(token: Tokens.Image) {
        const alt = token.text || labels.image;
        return `<span class="md-image" title="${escapeHtml(token.href ?? '')}">[${escapeHtml(labels.image)}: ${escapeHtml(alt)}]</span>`;
      },
      link(token: Tokens.Link) {
        const inner = this.parser.parseInline(token.tokens);
        const href = (token.href ?? '').trim();
        if (!SAFE_URL.test(href)) return inner;
        return `<a href="${escapeHtml(href)}">${inner}</a>`;
      },
      code(token: Tokens.Code) {
        const lang = (token.lang ?? '').split(/\s/)[0] ?? '';
        return (
          `<div class="code-block"><div class="code-head"><span class="code-lang">${escapeHtml(lang)}</span>` +
          `<button type="button" class="copy-btn" data-copy="1">${escapeHtml(labels.copy)}</button></div>` +
          `<pre><code>${escapeHtml(token.text)}</code></pre></div>`
        );
      },
    },
  });
}

let hooked = false;
function installHooks(): void {
  if (hooked) return;
  hooked = true;
  DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeName === 'A') {
      const href = node.getAttribute('href') ?? '';
      if (!SAFE_URL.test(href.trim())) node.removeAttribute('href');
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer nofollow');
    }
  });
}

const PURIFY = {
  FORBID_TAGS: [
    'img',
    'image',
    'svg',
    'math',
    'style',
    'iframe',
    'object',
    'embed',
    'form',
    'input',
    'textarea',
    'select',
    'video',
    'audio',
    'source',
    'picture',
    'link',
    'meta',
    'base',
  ],
  FORBID_ATTR: ['style', 'srcset', 'src', 'action', 'formaction', 'background', 'poster'],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  ALLOW_DATA_ATTR: true,
};

const markedCache = new Map<string, Marked>();

/** Renders an answer (thinking already removed) to safe HTML. Box markers become numbered chips. */
export function renderAnswer(answer: string, labels: RenderLabels): { html: string; boxes: Box[] } {
  installHooks();
  const key = `${labels.copy}\u0001${labels.image}`;
  let marked = markedCache.get(key);
  if (!marked) {
    marked = makeMarked(labels);
    markedCache.set(key, marked);
  }
  const { segments, boxes } = splitBoxes(answer);
  // Markers become private-use placeholders so Markdown cannot split or escape them.
  const stash: string[] = [];
  let md = '';
  for (const seg of segments) {
    if (seg.kind === 'text') md += seg.text;
    else {
      const html =
        seg.kind === 'boxes'
          ? seg.boxes
              .map(
                (b) =>
                  `<span class="box-ref box-c${(b.index - 1) % 8}" data-box="${b.index}" title="[${b.x1}, ${b.y1}, ${b.x2}, ${b.y2}]">${b.index}</span>`,
              )
              .join('')
          : `<mark class="answer-box">${escapeHtml(seg.text)}</mark>`;
      stash.push(html);
      md += `\uE000${stash.length - 1}\uE001`;
    }
  }
  const raw = marked.parse(md, { async: false }) as string;
  const clean = DOMPurify.sanitize(raw, PURIFY) as unknown as string;
  const html = clean.replace(/\uE000(\d+)\uE001/g, (_, i: string) => stash[Number(i)] ?? '');
  return { html, boxes };
}

/** Thinking is shown as plain text: it is a draft, and it is as untrusted as the answer. */
export function renderPlain(text: string): string {
  return escapeHtml(text).replace(/\n/g, '<br>');
}
