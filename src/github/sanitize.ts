/**
 * Characters that change what a reader sees without showing themselves: zero-width and
 * joiner characters, bidi embeddings/overrides/isolates, the BOM, soft hyphen, Mongolian
 * vowel separator, invisible math operators, Unicode tag characters, and C0/C1 controls
 * other than tab and newline.
 */
const INVISIBLE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u061C\u115F\u1160\u17B4\u17B5\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\u3164\uFEFF\uFFA0\uFFF9-\uFFFB]|\uDB40[\uDC00-\uDC7F]/g;

/** Elements a reader of the rendered issue never sees. */
const HIDDEN_ELEMENT = /<([a-z][a-z0-9]*)\b[^>]*?(?:\shidden\b|style\s*=\s*["'][^"']*(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0)[^"']*["'])[^>]*>[\s\S]*?<\/\1\s*>/gi;

/**
 * Removes the carriers of hidden instructions from user-written Markdown before it reaches
 * an agent: HTML comments (also unterminated ones), hidden HTML elements, image alt text
 * (Markdown and `<img>`), invisible and bidirectional-control characters. Unicode line and
 * paragraph separators become spaces: Markdown does not break lines at them, so neither may
 * the command parser. What a person sees on GitHub is kept.
 */
export function sanitizeUntrusted(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/[\u2028\u2029]/g, ' ')
    .replace(INVISIBLE, '')
    .replace(/<!--[\s\S]*?(?:-->|$)/g, '')
    .replace(HIDDEN_ELEMENT, '')
    .replace(/<img\b[^>]*>/gi, '[image]')
    .replace(/!\[[^\]]*\]\(([^)\s]*)[^)]*\)/g, (_, url: string) => (url ? `[image: ${url}]` : '[image]'))
    .replace(/!\[[^\]]*\]\[[^\]]*\]/g, '[image]')
    .replace(/[ \t]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    // Blank lines at the ends go; the first line's indentation stays (it can make code).
    .replace(/^(?:[ \t]*\n)+/, '')
    .trimEnd();
}
