// Untrusted text built to be slow: the comment that made sanitising quadratic, and a final
// answer of Markdown tables that fill in cells. Times one call of each function in this
// process, on the built code (dist/). Alone: node bench/hostile-text.mjs [dist dir]
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { ROOT, stats } from './lib.mjs';

/** `/` + `<a` × 32,700 + a nest of HTML comments that re-forms after each removal, cut to 65,536 characters. */
export function craftedComment() {
  const nested = (d) => (d === 0 ? '<!---->' : `<!${nested(d - 1)}---->`);
  return ('/' + '<a'.repeat(32_700) + nested(10)).slice(0, 65_536);
}

/** Five 100-column tables whose rows have one cell each: a parser fills in the other 99. */
export function fillingTables() {
  const table = `${'| h '.repeat(100)}|\n${'|---'.repeat(100)}|\n${'| x |\n'.repeat(1_900)}\n`;
  return table.repeat(5);
}

function timeMs(f, input, runs) {
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    f(input);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return stats(ms);
}

export async function benchHostileText({ runs = 5, dist = join(ROOT, 'dist') } = {}) {
  const load = (file) => import(pathToFileURL(join(dist, file)).href);
  const { sanitizeUntrusted } = await load('github/sanitize.js');
  const { parseCommand } = await load('github/commands.js');
  const { safeMarkdown } = await load('github/markdown-safe.js');
  const comment = craftedComment();
  const tables = fillingTables();
  return {
    commentChars: comment.length,
    tablesChars: tables.length,
    sanitize: timeMs(sanitizeUntrusted, comment, runs),
    parseCommand: timeMs(parseCommand, comment, runs),
    safeMarkdown: timeMs(safeMarkdown, tables, runs),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchHostileText({ dist: process.argv[2] ?? join(ROOT, 'dist') });
  for (const [name, v] of Object.entries(r)) console.log(name, typeof v === 'number' ? v : `median ${v.median.toFixed(1)} ms (min ${v.min.toFixed(1)}, max ${v.max.toFixed(1)}, n=${v.n})`);
}
