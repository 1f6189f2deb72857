import { Type } from 'typebox';

/** Config fields: Images, documents and video: size limits, fetching and decoding. */
export const mediaFields = {
  images: Type.Object(
    {
      maxBytes: Type.Integer({
        minimum: 1,
        default: 10 * 1024 * 1024,
        description: 'Largest encoded image in bytes (upload, decoded base64, or fetched body).',
      }),
      maxPixels: Type.Integer({
        minimum: 1,
        default: 50_000_000,
        description: 'Largest width x height, read from the image header before decoding (stops decompression bombs).',
      }),
      maxAspectRatio: Type.Number({
        minimum: 1,
        default: 200,
        description:
          'Longest over shortest side, from the header. Extreme strips (1,000,000 x 20) cost gigabytes to resize and carry nothing a model can see.',
      }),
      maxImagesPerRequest: Type.Integer({ minimum: 0, default: 8, description: 'Images one request may carry.' }),
      maxBase64Length: Type.Integer({
        minimum: 4,
        default: Math.ceil((10 * 1024 * 1024) / 3) * 4,
        description: 'Longest base64 text (data URL payload or bare base64), checked before decoding it.',
      }),
      patchMultiple: Type.Integer({
        minimum: 1,
        maximum: 1024,
        default: 28,
        description:
          "The model's pixel unit: image sides are multiples of it (GLM-4.6V: 14 px patches merged 2x2 = 28), and each unit squared is one image token in usage.",
      }),
      maxEdge: Type.Integer({
        minimum: 16,
        maximum: 16384,
        default: 1024,
        description: 'Images are shrunk (never enlarged) so their longest edge is at most this many pixels.',
      }),
      maxEdgeByModel: Type.Record(Type.String({ minLength: 1 }), Type.Integer({ minimum: 16, maximum: 16384 }), {
        default: {},
        description:
          'Model profiles: the longest edge for images sent to a model, by the model id requests name (e.g. {"Qwen2-VL-2B-Instruct": 448}); models not listed use maxEdge. As a flag or env value: id=px,id=px.',
      }),
      maxConcurrentDecodes: Type.Integer({
        minimum: 0,
        maximum: 1024,
        default: 0,
        description:
          'Images normalized at the same time across all requests; others wait their turn (0 = one per CPU core).',
      }),
      decodeTimeoutSeconds: Type.Integer({
        minimum: 0,
        maximum: 600,
        default: 10,
        description: 'Seconds one image may spend decoding and resizing before it is refused (0 = no limit).',
      }),
      outputFormat: Type.Enum(['jpeg', 'png', 'webp'], {
        default: 'jpeg',
        description: 'Encoding of the normalized image handed to engines.',
      }),
      outputQuality: Type.Integer({
        minimum: 1,
        maximum: 100,
        default: 90,
        description: 'Quality of the normalized image when the encoding is lossy.',
      }),
      fetchTimeoutMs: Type.Integer({
        minimum: 1,
        default: 10_000,
        description: 'Total time allowed to fetch one image URL, redirects and body included.',
      }),
      maxRedirects: Type.Integer({
        minimum: 0,
        maximum: 10,
        default: 3,
        description: 'Redirects followed when fetching an image URL; each is checked again.',
      }),
      allowDomains: Type.Array(Type.String(), {
        default: [],
        description: 'When not empty, image URLs must be on one of these domains (or their subdomains).',
      }),
      denyDomains: Type.Array(Type.String(), {
        default: [],
        description: 'Image URLs on these domains (or their subdomains) are refused.',
      }),
      allowPrivateNetworks: Type.Boolean({
        default: false,
        description:
          'Let image URLs reach loopback, private (RFC 1918), CGNAT and IPv6 unique-local addresses, for storage on your own network. Link-local (cloud metadata) stays refused.',
      }),
    },
    { default: {} },
  ),
  documents: Type.Object(
    {
      maxBytes: Type.Integer({
        minimum: 1,
        default: 50 * 1024 * 1024,
        description: 'Largest document in bytes (PDF or Office file: upload, decoded base64, or fetched body).',
      }),
      maxPages: Type.Integer({
        minimum: 1,
        maximum: 10_000,
        default: 64,
        description:
          'Pages one document may have; a longer one is refused (its page count is read before any page is rendered).',
      }),
      totalPixels: Type.Integer({
        minimum: 784,
        default: 16_384 * 784,
        description:
          "Pixels shared by a document's pages (GLM-V style budget): each page gets totalPixels / pages, within minPagePixels..maxPagePixels, so a long document fits the model's context.",
      }),
      maxPagePixels: Type.Integer({
        minimum: 784,
        default: 1024 * 1024,
        description: 'Most pixels one rendered page gets, however short the document.',
      }),
      minPagePixels: Type.Integer({
        minimum: 784,
        default: 256 * 256,
        description: 'Fewest pixels one rendered page gets, however long the document (text below this is unreadable).',
      }),
      maxPageInches: Type.Number({
        minimum: 1,
        default: 100,
        description: 'Longest page side in inches; a larger page (PDF allows 200 x 200) is refused before rendering.',
      }),
      renderTimeoutSeconds: Type.Integer({
        minimum: 1,
        maximum: 600,
        default: 30,
        description:
          "Seconds one document's pages may take to render before the render is stopped and the document refused.",
      }),
      maxConcurrentRenders: Type.Integer({
        minimum: 0,
        maximum: 64,
        default: 0,
        description:
          'Documents rendered at the same time, each on its own thread; others wait their turn (0 = half the CPU cores, at least one).',
      }),
      conversionTimeoutSeconds: Type.Integer({
        minimum: 1,
        maximum: 600,
        default: 60,
        description: 'Seconds LibreOffice may take to turn one Office file into PDF; conversions run one at a time.',
      }),
      maxUnpackedBytes: Type.Integer({
        minimum: 1,
        default: 200 * 1024 * 1024,
        description:
          'Office files are zip archives: the most their entries may claim to unpack to (stops zip bombs before LibreOffice opens them).',
      }),
      libreOffice: Type.String({
        default: 'soffice',
        description: 'LibreOffice program used to convert Office files (found on PATH unless a path is given).',
      }),
    },
    { default: {} },
  ),
  video: Type.Object(
    {
      maxBytes: Type.Integer({
        minimum: 1,
        default: 100 * 1024 * 1024,
        description: 'Largest video in bytes (upload, decoded base64, or fetched body).',
      }),
      maxDurationSeconds: Type.Number({
        minimum: 1,
        default: 3600,
        description: 'Longest video, read from its header before decoding.',
      }),
      maxPixels: Type.Integer({
        minimum: 1,
        default: 3840 * 2160,
        description: 'Largest frame width x height, read from the header before decoding (8K is refused by default).',
      }),
      maxFrames: Type.Integer({
        minimum: 1,
        maximum: 1024,
        default: 64,
        description:
          'Most frames sampled from one video (GLM-4.6V: about 3 fps to 30 s, 1 fps to 300 s, 0.5 fps after, then thinned to this many).',
      }),
      totalPixels: Type.Integer({
        minimum: 784,
        default: 16_384 * 784,
        description:
          "Pixels shared by a video's frames: each frame gets totalPixels / frames, within the documents' min/max page pixels.",
      }),
      decodeTimeoutSeconds: Type.Integer({
        minimum: 1,
        maximum: 600,
        default: 30,
        description: 'Seconds ffmpeg may take to sample one video before it is stopped and the video refused.',
      }),
      upstreamPassthrough: Type.Boolean({
        default: false,
        description:
          'The upstream pool serves video (vLLM or SGLang with GLM-4.6V): send videos whole as video_url parts instead of sampled frames.',
      }),
      ffmpeg: Type.String({
        default: 'ffmpeg',
        description: 'ffmpeg program (found on PATH unless a path is given); ffprobe is looked for beside it.',
      }),
    },
    { default: {} },
  ),
};
