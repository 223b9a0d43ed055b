import { describe, expect, it } from 'vitest';
import { demuxDockerStream } from '../../src/core/demux.js';

function frame(kind: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = kind;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

async function collect(pieces: Buffer[]): Promise<Array<[string, string]>> {
  const result: Array<[string, string]> = [];
  for await (const c of demuxDockerStream((async function* () { yield* pieces; })())) result.push([c.stream, c.data.toString()]);
  return result;
}

describe('demuxDockerStream', () => {
  const whole = Buffer.concat([frame(1, 'out1\n'), frame(2, 'err1\n'), frame(0, 'stdin'), frame(1, 'out2\n')]);
  const expected: Array<[string, string]> = [['stdout', 'out1\n'], ['stderr', 'err1\n'], ['stdout', 'out2\n']];

  it('separates stdout and stderr frames and skips stdin frames', async () => {
    expect(await collect([whole])).toEqual(expected);
  });

  it.each([1, 3, 7, 8, 9, 13])('reassembles frames cut every %d bytes', async (step) => {
    const pieces: Buffer[] = [];
    for (let i = 0; i < whole.length; i += step) pieces.push(whole.subarray(i, i + step));
    const merged = await collect(pieces);
    // Frames may arrive in pieces; concatenated per stream they are the same bytes.
    const join = (rows: Array<[string, string]>, s: string) => rows.filter(([k]) => k === s).map(([, t]) => t).join('');
    expect(join(merged, 'stdout')).toBe('out1\nout2\n');
    expect(join(merged, 'stderr')).toBe('err1\n');
  });

  it('fails loudly on a stream that ends inside a frame', async () => {
    await expect(collect([frame(1, 'hello').subarray(0, 10)])).rejects.toThrow(/ended inside a frame/);
  });
});
